package collector

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"

	// goccy/go-json decodes and encodes the generic values of the event
	// contract (map[string]any, json.Number) with encoding/json's results
	// at a fraction of the allocations; its Number is encoding/json's. It
	// accepts some input encoding/json rejects (a leading zero, a raw tab
	// in a string), so encoding/json's scanner checks the grammar first.
	// TestJSONCodecMatchesEncodingJSON and FuzzJSONCodec hold it to
	// encoding/json's results.
	json "github.com/goccy/go-json"
)

// decodeJSON decodes one JSON document, numbers as json.Number (so ids and
// card numbers keep every digit). The error says what is wrong, to follow
// "value" or "CloudEvents binary data" in a quarantine reason.
func decodeJSON(b []byte) (any, error) {
	if !stdjson.Valid(b) {
		return nil, stdReason(b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		// Valid JSON goccy refuses (a number beyond float64's range, which
		// encoding/json keeps as a json.Number): encoding/json decides.
		return stdDecode(b)
	}
	return v, nil
}

func stdDecode(b []byte) (any, error) {
	dec := stdjson.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("is not valid JSON: %v", err)
	}
	return v, nil
}

// stdReason says why encoding/json rejects b.
func stdReason(b []byte) error {
	dec := stdjson.NewDecoder(bytes.NewReader(b))
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("is not valid JSON: %v", err)
	}
	return fmt.Errorf("has trailing data after the JSON document")
}

// encodeJSON encodes a decoded (and masked) value as encoding/json does:
// map keys sorted, HTML characters escaped.
func encodeJSON(v any) ([]byte, error) { return json.Marshal(v) }
