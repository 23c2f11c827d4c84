// Package auth decides who may call weft's HTTP API: it authenticates a
// request by a bearer token (stored hashed in the configuration) or an
// OIDC JWT (checked against the issuer's keys), grants the identity's
// roles, and refuses — logged, counted, with a JSON body saying why —
// what the identity may not do (docs/security.md).
package auth
