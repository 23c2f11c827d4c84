// Package embedch runs an embedded ClickHouse server, loaded from the chDB engine library, in a child process of weft.
package embedch
