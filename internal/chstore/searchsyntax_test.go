package chstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFieldPath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want FieldPath
		back string // String(), when it differs from in
	}{
		{in: "data", want: FieldPath{}},
		{in: "data.customer.tier", want: FieldPath{{Key: "customer"}, {Key: "tier"}}},
		{in: "data.items[0].sku", want: FieldPath{{Key: "items"}, {Index: 0, IsIndex: true}, {Key: "sku"}}},
		{in: "data.matrix[2][10]", want: FieldPath{{Key: "matrix"}, {Index: 2, IsIndex: true}, {Index: 10, IsIndex: true}}},
		{in: `data["odd.key"].x`, want: FieldPath{{Key: "odd.key"}, {Key: "x"}}},
		{in: `data["say \"hi\" ]"]`, want: FieldPath{{Key: `say "hi" ]`}}},
		{in: `data["plain"]`, want: FieldPath{{Key: "plain"}}, back: "data.plain"},
		{in: `data[""]`, want: FieldPath{{Key: ""}}},
		{in: "data.é.ß", want: FieldPath{{Key: "é"}, {Key: "ß"}}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseFieldPath(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			back := tc.back
			if back == "" {
				back = tc.in
			}
			assert.Equal(t, back, got.String())
			again, err := ParseFieldPath(got.String())
			require.NoError(t, err)
			assert.Equal(t, got, again)
		})
	}
	for _, in := range []string{"", "customer.tier", "$.data.x", "dat", "datax", "data.", "data..x", "data.a]",
		"data[", "data[x]", "data[-1]", "data[+1]", "data[99999999]", `data["x]`, `data["x"`, `data["\q"]`, "data x"} {
		t.Run("bad "+in, func(t *testing.T) {
			_, err := ParseFieldPath(in)
			assert.Error(t, err)
		})
	}
}

func TestValueTokens(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"gold", []string{"gold"}},
		{"cus_52304ddf5a", []string{"cus", "52304ddf5a"}},
		{"store-0101", []string{"store", "0101"}},
		{"a b a", []string{"a", "b"}},
		{"Zürich", []string{"Zürich"}},
		{"***", nil},
		{"", nil},
		{`say "hi"`, nil}, // stored escaped
		{`back\slash`, nil},
		{"a<b", nil}, // stored as a\u003cb
		{"R&D", nil},
		{"tab\there", nil},
		{"line\u2028sep", nil},
		{"bad\xffutf8", nil},
		{"a1 b2 c3 d4 e5 f6 g7 h8 i9 j10", []string{"a1", "b2", "c3", "d4", "e5", "f6", "g7", "h8"}},
	} {
		assert.Equal(t, tc.want, valueTokens(tc.in), "%q", tc.in)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []Cursor{
		{EventTime: time.Date(2026, 11, 24, 10, 0, 0, 123_000_000, time.UTC), Topic: "commerce.orders", Partition: 7, Offset: 1 << 40},
		{EventTime: time.UnixMilli(0).UTC(), Topic: "a|b", OldestFirst: true},
	} {
		got, err := ParseCursor(c.String())
		require.NoError(t, err)
		assert.Equal(t, c, got)
	}
	for _, bad := range []string{"", "x", "eyJ0IjoxfQ", "bm90IGpzb24", Cursor{Topic: "t"}.String() + "A"} {
		_, err := ParseCursor(bad)
		assert.ErrorIs(t, err, ErrBadCursor, "%q", bad)
	}
}
