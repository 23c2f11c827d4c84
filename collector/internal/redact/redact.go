// Package redact masks card numbers, CVVs and personal data in decoded JSON
// before anything is stored.
package redact

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
)

// Rules says what to mask. The zero value masks nothing; use Default.
type Rules struct {
	// Keys are JSON object keys (compared case-insensitively, ignoring _ and -)
	// whose values are masked whatever they hold.
	Keys []string
	// Cards masks digit runs of 13–19 digits (spaces or dashes allowed) that
	// pass the Luhn check, in any string or number, keeping the last four digits.
	Cards bool
	// Emails masks e-mail addresses in any string, keeping the domain.
	Emails bool
}

// DefaultKeys are masked by default.
var DefaultKeys = []string{
	"card_number", "cardnumber", "pan", "card", "cvv", "cvc", "cvv2", "security_code",
	"email", "phone", "phone_number", "mobile", "password", "ssn", "date_of_birth", "dob",
}

// Default returns the rules weft applies when the config says nothing.
func Default() Rules { return Rules{Keys: DefaultKeys, Cards: true, Emails: true} }

// Masked is what a masked value is replaced with when nothing of it is kept.
const Masked = "***"

// Redactor applies Rules to the strings, object keys and numbers of a JSON
// value as the decoder writes it (collector/payload.go), and to headers.
type Redactor struct {
	keys map[string]bool
	// shapes[c] has bit min(n, 63) set when a key of keys of length n
	// starts with byte c: most keys are told apart from every sensitive
	// one by that alone, without hashing them.
	shapes [256]uint64
	cards  bool
	emails bool
}

// New compiles rules.
func New(r Rules) *Redactor {
	red := &Redactor{keys: make(map[string]bool, len(r.Keys)), cards: r.Cards, emails: r.Emails}
	for _, k := range r.Keys {
		k = normKey(k)
		red.keys[k] = true
		var first byte
		if k != "" {
			first = k[0]
		}
		red.shapes[first] |= 1 << min(len(k), 63)
	}
	return red
}

// normKey lower-cases k and drops '_' and '-', so card_number, cardNumber
// and Card-Number compare equal. It allocates only when it changes k.
func normKey(k string) string {
	clean := true
	for i := 0; i < len(k); i++ {
		if c := k[i]; c == '_' || c == '-' || c >= 'A' && c <= 'Z' || c >= 0x80 {
			clean = false
			break
		}
	}
	if clean {
		return k
	}
	b := make([]byte, 0, len(k))
	for _, r := range strings.ToLower(k) {
		if r != '_' && r != '-' {
			b = append(b, string(r)...)
		}
	}
	return string(b)
}

// SensitiveKey reports whether values under key are masked whole. It runs
// for every header and every object key of every record, so the common
// case, a short ASCII key, is normalized on the stack without allocating.
func (r *Redactor) SensitiveKey(key string) bool { return sensitiveKey(r, key) }

// SensitiveKeyBytes is SensitiveKey for a key still in the record's bytes.
func (r *Redactor) SensitiveKeyBytes(key []byte) bool { return sensitiveKey(r, key) }

func sensitiveKey[T string | []byte](r *Redactor, key T) bool {
	if len(key) > 64 {
		return r.keys[normKey(string(key))]
	}
	var buf [64]byte
	n := 0
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 0x80:
			return r.keys[normKey(string(key))]
		case c == '_' || c == '-':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	if r.shapes[buf[0]]&(1<<min(n, 63)) == 0 { // buf[0] is 0 when n is
		return false
	}
	return r.keys[string(buf[:n])]
}

// Keys returns the names under which an object's keys are stored: each
// key as it is, or masked (String) when it holds a card number or an
// e-mail address, as maps keyed by e-mail or card number do. keys must be
// sorted and distinct. Masked keys may collide (two addresses at one
// domain with the same first letter…): every name is kept distinct, so no
// member is lost: the keys stored as they are keep their names, and the
// masked ones, in key order, take the masked text or, when it is taken,
// the masked text with "#2", "#3"… appended.
func (r *Redactor) Keys(keys []string) []string {
	out := make([]string, len(keys))
	taken := make(map[string]bool, len(keys))
	var masked []int
	for i, k := range keys {
		out[i] = k
		if m := r.String(k); m != k {
			out[i] = m
			masked = append(masked, i)
			continue
		}
		taken[k] = true
	}
	for _, i := range masked {
		name := out[i]
		for n := 2; taken[name]; n++ {
			name = out[i] + "#" + strconv.Itoa(n)
		}
		out[i] = name
		taken[name] = true
	}
	return out
}

// Unchanged reports whether String leaves s as it is, without converting
// s to a string: no run of digits a card number could hide in, no '@'. It
// runs on every string of every payload, which mostly need no masking.
func (r *Redactor) Unchanged(s []byte) bool {
	return !(r.cards && hasDigitRun(s, 13)) && !(r.emails && bytes.IndexByte(s, '@') >= 0)
}

// UnchangedString is Unchanged for a string.
func (r *Redactor) UnchangedString(s string) bool {
	return !(r.cards && hasDigitRun(s, 13)) && !(r.emails && strings.IndexByte(s, '@') >= 0)
}

// Number masks card numbers in the literal text of a JSON number: it
// returns the masked text (to be stored as a string) and true, or "" and
// false when n is kept as it is.
func (r *Redactor) Number(n []byte) (string, bool) {
	if !r.cards || !hasDigitRun(n, 13) {
		return "", false
	}
	s := string(n)
	if m := maskCards(s); m != s {
		return m, true
	}
	return "", false
}

// AppendWhole appends what a string under a sensitive key becomes: its
// last four digits when it holds at least twelve, else Masked. (Any other
// value under a sensitive key becomes Masked, null stays null.) The result
// is ASCII: * and digits.
func AppendWhole(dst, s []byte) []byte {
	digits := 0
	for _, c := range s {
		if c-'0' <= 9 {
			digits++
		}
	}
	if digits < 12 {
		return append(dst, Masked...)
	}
	for range digits - 4 {
		dst = append(dst, '*')
	}
	start := len(dst)
	dst = append(dst, "0000"...)
	for i, n := len(s)-1, 4; n > 0; i-- { // the last four digits, from the end
		if c := s[i]; c-'0' <= 9 {
			n--
			dst[start+n] = c
		}
	}
	return dst
}

// String masks card numbers and e-mail addresses inside free text.
func (r *Redactor) String(s string) string {
	if r.cards {
		s = maskCards(s)
	}
	if r.emails && strings.IndexByte(s, '@') >= 0 {
		s = emailPattern.ReplaceAllStringFunc(s, maskEmail)
	}
	return s
}

var (
	cardPattern  = regexp.MustCompile(`\b\d(?:[ -]?\d){12,18}\b`)
	emailPattern = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)
)

func maskCards(s string) string {
	if !hasDigitRun(s, 13) {
		return s
	}
	return cardPattern.ReplaceAllStringFunc(s, func(m string) string {
		digits := onlyDigits(m)
		if !CardLike(digits) {
			return maskWithin(m)
		}
		return strings.Repeat("*", len(digits)-4) + digits[len(digits)-4:]
	})
}

// maskWithin masks the card numbers inside a run of digit groups that is
// not one itself: the pattern takes the longest run it can, so a card
// followed or preceded by a short group ("4111111111111111-01", a span
// id in a traceparent) matches as a whole that fails the Luhn check. A
// card here is whole groups with 13–19 digits, leftmost first; the rest
// of the run is kept.
func maskWithin(m string) string {
	type group struct{ start, end int }
	var gs []group
	for i := 0; i < len(m); {
		if m[i]-'0' > 9 {
			i++
			continue
		}
		j := i
		for j < len(m) && m[j]-'0' <= 9 {
			j++
		}
		gs = append(gs, group{i, j})
		i = j
	}
	var b strings.Builder
	kept := 0 // m[kept:] is not written yet
	for i := 0; i < len(gs); i++ {
		digits := ""
		for j := i; j < len(gs) && len(digits) <= 19; j++ {
			digits += m[gs[j].start:gs[j].end]
			if CardLike(digits) {
				b.WriteString(m[kept:gs[i].start])
				b.WriteString(strings.Repeat("*", len(digits)-4) + digits[len(digits)-4:])
				kept, i = gs[j].end, j
				break
			}
		}
	}
	if kept == 0 {
		return m
	}
	return b.String() + m[kept:]
}

func maskEmail(m string) string {
	at := strings.LastIndexByte(m, '@')
	return Masked + m[at:]
}

// hasDigitRun is a cheap pre-check: at least n digits, possibly separated by
// single spaces or dashes, somewhere in s. It runs over every string of
// every payload, so text without digits is skipped a byte at a time in a
// tight loop.
func hasDigitRun[T string | []byte](s T, n int) bool {
	// A run of eleven bytes or more covers some eight-byte block that
	// starts at a multiple of four: without such a block of digits, spaces
	// and dashes there is no run, as in most text and identifiers.
	if n >= 11 && !runBlock(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		for i+8 <= len(s) && !digit8(load64(s, i)) {
			i += 8
		}
		if i == len(s) || s[i]-'0' > 9 {
			continue
		}
		// A run starts at s[i]: digits count, spaces and dashes carry it
		// on, anything else ends it.
		run := 0
		for ; i < len(s); i++ {
			if c := s[i]; c-'0' <= 9 {
				if run++; run >= n {
					return true
				}
			} else if c != ' ' && c != '-' {
				break
			}
		}
	}
	return false
}

// runBlock reports whether s has an eight-byte block, at a multiple of
// four, of digits, spaces and dashes only, with at least one digit.
func runBlock[T string | []byte](s T) bool {
	for i := 0; i+8 <= len(s); i += 4 {
		if x := load64(s, i); digit8(x) && runBytes8(x) {
			return true
		}
	}
	return false
}

// runBytes8 reports whether every byte of x is a digit, a space or a dash.
// Each test is exact byte by byte: no carry crosses a byte.
func runBytes8(x uint64) bool {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	nonZero := func(z uint64) uint64 { return (z | (z&^msb + 0x7f*lsb)) & msb } // z's byte ≠ 0
	y := x ^ '0'*lsb
	notDigit := (y | (y&^msb + (0x80-10)*lsb)) & msb // y's byte ≥ 10
	return notDigit&nonZero(x^' '*lsb)&nonZero(x^'-'*lsb) == 0
}

// digit8 reports whether one of the eight bytes of x is an ASCII digit:
// one of x^'0' below 10.
func digit8(x uint64) bool {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	y := x ^ '0'*lsb
	return (y-10*lsb)&^y&msb != 0
}

// load64 reads s[i:i+8] little-endian (the compiler makes it one load).
func load64[T string | []byte](s T, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

func onlyDigits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// CardLike reports whether digits could be a payment card number: 13–19
// digits, a major network's leading digit (2–6), and a valid Luhn check. The
// leading digit keeps epoch timestamps (which start with 1) unmasked.
func CardLike(digits string) bool {
	return len(digits) >= 13 && len(digits) <= 19 && digits[0] >= '2' && digits[0] <= '6' && Luhn(digits)
}

// Luhn reports whether a string of digits passes the Luhn checksum.
func Luhn(digits string) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}
