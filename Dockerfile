# The image charts/weft deploys: weft alone, a static binary on distroless,
# as a non-root user (docs/deploy.md, "The image"). Not built in CI here.
#   docker build -t ghcr.io/weft-sh/weft:0.1.0 .
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' -o /out/weft ./cmd/weft

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/weft /usr/local/bin/weft
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/weft"]
CMD ["run"]
