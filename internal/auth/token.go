package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/weft-sh/weft/internal/config"
)

// TokenPrefix starts every token weft generates, so a leaked one is easy
// to recognise (and for secret scanners to find), and so a bearer token is
// told from a JWT without trying both.
const TokenPrefix = "weft_"

// hashPrefix names the hash function in a configured hash.
const hashPrefix = "sha256:"

// GenerateToken returns a new token — TokenPrefix and 256 random bits,
// base64url — and its configured hash.
func GenerateToken() (token, hash string, err error) {
	var b [32]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return "", "", fmt.Errorf("generate token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken is the hash of token as the configuration stores it:
// "sha256:" and the hex SHA-256 of the whole token. A token carries 256
// random bits, so nothing can be guessed from its hash and a slow password
// hash would add nothing but CPU per request (docs/security.md).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// ValidToken reports whether s has the form GenerateToken gives.
func ValidToken(s string) bool {
	rest, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil && len(b) == 32
}

func parseHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	hexed, ok := strings.CutPrefix(s, hashPrefix)
	if !ok || len(hexed) != 2*sha256.Size {
		return h, fmt.Errorf("want sha256:<64 hex digits>, as `weft auth token` prints")
	}
	if _, err := hex.Decode(h[:], []byte(hexed)); err != nil {
		return h, fmt.Errorf("want sha256:<64 hex digits>, as `weft auth token` prints: %v", err)
	}
	return h, nil
}

// tokenSet matches presented tokens against the configured hashes.
type tokenSet struct {
	hashes [][sha256.Size]byte
	ids    []Identity
}

func newTokenSet(ts []Token) *tokenSet {
	s := &tokenSet{}
	for _, t := range ts {
		h, err := parseHash(t.Hash)
		if err != nil {
			continue // Validate reported it
		}
		s.hashes = append(s.hashes, h)
		s.ids = append(s.ids, Identity{Name: t.Name, Roles: append([]Role(nil), t.Roles...), Method: MethodToken})
	}
	return s
}

// match returns the identity of token. It compares the token's hash with
// every configured one in constant time, and does not stop at a match, so
// the time taken says nothing about which hash, or how much of one,
// matched.
func (s *tokenSet) match(token string) (Identity, bool) {
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i, h := range s.hashes {
		if subtle.ConstantTimeCompare(sum[:], h[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Identity{}, false
	}
	return s.ids[found], true
}

// readTokensFile reads the tokens of path (a YAML list of Token) and
// reports their problems with their place in the list ([1].roles[0]).
func readTokensFile(path string) ([]Token, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ts []Token
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&ts); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("want a YAML list of {name, roles, hash}: %w", err)
	}
	var p config.Problems
	checkTokens(&p, "", ts)
	return ts, p.Err()
}
