# The image charts/weft deploys: weft alone on distroless, as a non-root
# user (docs/deploy.md, "The image"). Not built in CI here. weft links glibc
# even with CGO_ENABLED=0 (purego, which loads the embedded ClickHouse's
# library at run time, needs the dynamic loader), so the base is
# distroless/base (glibc, no shell), not distroless/static.
#   docker build -t ghcr.io/weft-sh/weft:0.1.0 .
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -buildvcs=false -ldflags='-s -w' -o /out/weft ./cmd/weft

FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/weft /usr/local/bin/weft
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/weft"]
CMD ["run"]
