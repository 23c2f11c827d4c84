package auditor

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is a log's signed statement of its size and root: the body of
// a C2SP tlog-checkpoint (origin line, decimal size, base64 root), without
// extension lines.
type Checkpoint struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   Hash   `json:"-"`
}

// Text is the checkpoint's note text, by the formats module's Marshal.
func (c Checkpoint) Text() []byte {
	return log.Checkpoint{Origin: c.Origin, Size: c.Size, Hash: c.Root[:]}.Marshal()
}

// LogOrigin is the origin line of a topic-partition's log:
// weft/<cluster-id>/<topic>/<partition>.
func LogOrigin(cluster, topic string, partition int32) string {
	return "weft/" + cluster + "/" + topic + "/" + strconv.FormatInt(int64(partition), 10)
}

// ActionsOrigin is the origin line of a cluster's operator-actions log:
// weft/<cluster-id>/actions. It cannot be a partition's: those have four
// parts.
func ActionsOrigin(cluster string) string { return "weft/" + cluster + "/actions" }

// ValidClusterID reports whether id can stand in an origin line: 1 to 200
// bytes of printable ASCII without '/', '+' or spaces (Kafka's cluster ids
// are 22 base64url characters).
func ValidClusterID(id string) error {
	if id == "" || len(id) > 200 {
		return fmt.Errorf("cluster id %q: want 1 to 200 bytes", id)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '/' || c == '+' {
			return fmt.Errorf("cluster id %q: byte %d is not printable ASCII other than '/', '+' or space", id, i)
		}
	}
	return nil
}

// SignedCheckpoint is a checkpoint and the bytes that carry it: a signed
// note (text, blank line, signature lines) when Signed, the bare text when
// weft had no signing key. An unsigned checkpoint proves nothing to anyone
// who does not trust the store it came from; every report says so.
type SignedCheckpoint struct {
	Checkpoint
	Note   []byte
	Signed bool
}

// Signer signs checkpoints with an Ed25519 note key.
type Signer struct {
	s           note.Signer
	verifierKey string
}

// GenerateKey returns a new Ed25519 note key pair named name (no spaces or
// '+'): the signer key ("PRIVATE+KEY+name+hash+key"), secret, and the
// verifier key ("name+hash+key") handed to auditors.
func GenerateKey(name string) (signerKey, verifierKey string, err error) {
	if !validKeyName(name) {
		return "", "", fmt.Errorf("key name %q: want a non-empty name without spaces or '+'", name)
	}
	return note.GenerateKey(rand.Reader, name)
}

// NewSigner reads a signer key as GenerateKey writes it.
func NewSigner(signerKey string) (*Signer, error) {
	signerKey = strings.TrimSpace(signerKey)
	s, err := note.NewSigner(signerKey)
	if err != nil {
		return nil, fmt.Errorf("signer key: %w", err) // never the key itself
	}
	// The verifier key is derived from the private key's seed, the fifth
	// '+'-separated part (base64, which may hold '+' itself), which
	// note.NewSigner has just checked.
	parts := strings.SplitN(signerKey, "+", 5)
	seed, _ := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if len(seed) != 1+ed25519.SeedSize {
		return nil, errors.New("signer key: not an Ed25519 key")
	}
	pub := ed25519.NewKeyFromSeed(seed[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, fmt.Errorf("signer key: %w", err)
	}
	return &Signer{s: s, verifierKey: vkey}, nil
}

// Name is the key's name, the name in its signature lines.
func (s *Signer) Name() string { return s.s.Name() }

// VerifierKey is the public key that verifies this signer's checkpoints.
func (s *Signer) VerifierKey() string { return s.verifierKey }

// Sign returns c as a signed note. A nil Signer (no key configured)
// returns c unsigned, so callers need not branch.
func (s *Signer) Sign(c Checkpoint) (SignedCheckpoint, error) {
	if err := checkOrigin(c.Origin); err != nil {
		return SignedCheckpoint{}, err
	}
	if s == nil {
		return SignedCheckpoint{Checkpoint: c, Note: c.Text()}, nil
	}
	msg, err := note.Sign(&note.Note{Text: string(c.Text())}, s.s)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("sign checkpoint: %w", err)
	}
	return SignedCheckpoint{Checkpoint: c, Note: msg, Signed: true}, nil
}

// Verifier checks checkpoints against a verifier key.
type Verifier struct {
	v   note.Verifier
	key string
}

// NewVerifier reads a verifier key ("name+hash+key").
func NewVerifier(verifierKey string) (*Verifier, error) {
	verifierKey = strings.TrimSpace(verifierKey)
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return nil, fmt.Errorf("verifier key %q: %w", verifierKey, err)
	}
	return &Verifier{v: v, key: verifierKey}, nil
}

// Key is the verifier key as given.
func (v *Verifier) Key() string { return v.key }

// ErrUnverifiable marks a check that could not be made: a checkpoint not
// signed by the key given (the wrong key, or a forgery: the bytes cannot
// tell), or no key to check with. Neither verified nor proven tampered.
var ErrUnverifiable = errors.New("could not verify")

// ErrTampered marks evidence that was checked and does not hold: a bad
// signature, a proof that does not reach the signed root, a row that does
// not match its leaf, a malformed file.
var ErrTampered = errors.New("does not verify")

// Open verifies a checkpoint signed by v's key for the log origin and
// parses it with the formats module's log.ParseCheckpoint. It is strict:
// the text must be exactly what Checkpoint.Text writes (no extension
// lines, canonical numbers and base64), as must every signature line's
// base64, so no two byte strings open to the same checkpoint. Signatures
// by other keys (witnesses' cosignatures) are allowed and ignored.
func (v *Verifier) Open(msg []byte, origin string) (SignedCheckpoint, error) {
	if err := strictSignatureLines(msg); err != nil {
		return SignedCheckpoint{}, err
	}
	// note.Open first, for its typed errors: a signature that does not
	// verify is tampering, a missing one is not verifiable.
	if _, err := note.Open(msg, note.VerifierList(v.v)); err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			names := []string{}
			for _, s := range unverified.Note.UnverifiedSigs {
				names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			return SignedCheckpoint{}, fmt.Errorf("checkpoint of %s is not signed by %s+%08x (signed by %s): %w",
				origin, v.v.Name(), v.v.KeyHash(), strings.Join(names, ", "), ErrUnverifiable)
		}
		return SignedCheckpoint{}, fmt.Errorf("checkpoint of %s: %v: %w", origin, err, ErrTampered)
	}
	cp, extra, _, err := log.ParseCheckpoint(msg, origin, v.v)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("checkpoint: %v: %w", err, ErrTampered)
	}
	c, err := fromParsed(cp, extra)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	if !bytes.HasPrefix(msg, append(c.Text(), '\n')) {
		return SignedCheckpoint{}, fmt.Errorf("checkpoint of %s: text is not in canonical form: %w", origin, ErrTampered)
	}
	return SignedCheckpoint{Checkpoint: c, Note: msg, Signed: true}, nil
}

// ParseCheckpoint reads a checkpoint without checking any signature: the
// bare text of an unsigned one, or the text of a signed note (Signed is
// then true, though nothing was verified). For reports made without a key.
func ParseCheckpoint(msg []byte, origin string) (SignedCheckpoint, error) {
	text, signed := msg, false
	if bytes.Contains(msg, []byte("\n\n")) {
		if err := strictSignatureLines(msg); err != nil {
			return SignedCheckpoint{}, err
		}
		_, err := note.Open(msg, note.VerifierList())
		var unverified *note.UnverifiedNoteError
		if !errors.As(err, &unverified) {
			return SignedCheckpoint{}, fmt.Errorf("checkpoint of %s: %v: %w", origin, err, ErrTampered)
		}
		text, signed = []byte(unverified.Note.Text), true
	}
	var cp log.Checkpoint
	extra, err := cp.Unmarshal(text)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("checkpoint of %s: %v: %w", origin, err, ErrTampered)
	}
	c, err := fromParsed(&cp, extra)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	if c.Origin != origin {
		return SignedCheckpoint{}, fmt.Errorf("checkpoint: origin %q, want %q: %w", c.Origin, origin, ErrTampered)
	}
	if !bytes.Equal(text, c.Text()) {
		return SignedCheckpoint{}, fmt.Errorf("checkpoint of %s: text is not in canonical form: %w", origin, ErrTampered)
	}
	return SignedCheckpoint{Checkpoint: c, Note: msg, Signed: signed}, nil
}

func fromParsed(cp *log.Checkpoint, extra []byte) (Checkpoint, error) {
	if len(extra) > 0 {
		return Checkpoint{}, fmt.Errorf("checkpoint of %s: extension lines, which weft never writes: %w", cp.Origin, ErrTampered)
	}
	if len(cp.Hash) != len(Hash{}) {
		return Checkpoint{}, fmt.Errorf("checkpoint of %s: root of %d bytes, want %d: %w", cp.Origin, len(cp.Hash), len(Hash{}), ErrTampered)
	}
	return Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: Hash(cp.Hash)}, nil
}

// strictSignatureLines rejects a note whose signature lines' base64 is not
// canonical (padding bits set), which note.Open would accept.
func strictSignatureLines(msg []byte) error {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return fmt.Errorf("checkpoint: no signature lines: %w", ErrTampered)
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(msg[i+2:]), "\n"), "\n") {
		b64 := line[strings.LastIndexByte(line, ' ')+1:]
		if _, err := base64.StdEncoding.Strict().DecodeString(b64); err != nil {
			return fmt.Errorf("checkpoint: signature line %.30q: not canonical base64: %w", line, ErrTampered)
		}
	}
	return nil
}

// CheckConsistent checks, with a consistency proof, that newer extends
// older: both of one log, newer no smaller. Two checkpoints of one log
// that fail it are proof that the log forked.
func CheckConsistent(older, newer Checkpoint, proofHashes []Hash) error {
	switch {
	case older.Origin != newer.Origin:
		return fmt.Errorf("checkpoints of two logs, %q and %q", older.Origin, newer.Origin)
	case older.Size > newer.Size:
		return fmt.Errorf("checkpoint of %s: size %d after size %d: the log shrank", older.Origin, newer.Size, older.Size)
	case older.Size == 0 && older.Root != Hash(rfc6962.DefaultHasher.EmptyRoot()):
		return fmt.Errorf("checkpoint of %s: size 0 with a root that is not the empty tree's", older.Origin)
	}
	if err := VerifyConsistency(older.Size, newer.Size, proofHashes, older.Root, newer.Root); err != nil {
		return fmt.Errorf("checkpoints of %s at sizes %d and %d are inconsistent: %w", older.Origin, older.Size, newer.Size, err)
	}
	return nil
}

func checkOrigin(origin string) error {
	if origin == "" || strings.ContainsAny(origin, "\n") {
		return fmt.Errorf("checkpoint origin %q: empty or several lines", origin)
	}
	return nil
}

// validKeyName is note's rule for key names: non-empty UTF-8 without
// spaces or '+'.
func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}
