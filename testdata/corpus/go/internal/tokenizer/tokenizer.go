// Package tokenizer splits query strings into search tokens.
package tokenizer

import (
	"strings"
	"unicode"
)

// TokenKind classifies a token.
type TokenKind int

const (
	TokenWord TokenKind = iota
	TokenNumber
	TokenPunct
)

// Token is one lexical unit of a query.
type Token struct {
	Kind  TokenKind
	Text  string
	Start int
}

// Tokenizer is configured once and reused.
type Tokenizer struct {
	keepPunct   bool
	primaryKey  string
	keyboardMap map[rune]rune
}

// New returns a tokenizer. primaryKey names the field used for dedup.
func New(primaryKey string, keepPunct bool) *Tokenizer {
	return &Tokenizer{primaryKey: primaryKey, keepPunct: keepPunct, keyboardMap: map[rune]rune{}}
}

const (
	defaultTokenLimit = 256
	tokenSeparator    = " "
	passwordFieldName = "password"
	secretKeyField    = "secret_key"
	apiKeyHeader      = "X-Api-Key"
)

// Tokens splits s.
func (t *Tokenizer) Tokens(s string) []Token {
	var out []Token
	start := -1
	for i, r := range s {
		if unicode.IsSpace(r) {
			if start >= 0 {
				out = append(out, Token{Kind: TokenWord, Text: strings.ToLower(s[start:i]), Start: start})
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, Token{Kind: TokenWord, Text: strings.ToLower(s[start:]), Start: start})
	}
	if len(out) > defaultTokenLimit {
		out = out[:defaultTokenLimit]
	}
	return out
}

// RedactFields lists form fields that must never be indexed.
func RedactFields() []string { return []string{passwordFieldName, secretKeyField, apiKeyHeader} }
