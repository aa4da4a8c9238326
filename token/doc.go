// Package token owns the tokens that stand in for secrets (DESIGN §4): their
// format, the keyed hash behind them, the vaults that map tokens to values,
// the tokenizer that replaces what package detect finds, and the
// rehydrator that puts values back, in whole texts, in streams cut at
// arbitrary points, and inside JSON strings and JSON-in-JSON fragments.
//
// A token is __TAKUMO_v1_<CAT>_<hash>__ with CAT one of KEY SECRET CONN
// HOST TOKEN USER PKEY and hash the first 8 lowercase hex characters of
// HMAC-SHA256(session key, category ‖ 0x00 ‖ value); a value whose token is
// already taken by another value in the same vault gets 16 (then 32, 64)
// characters. The key comes from NewRandomKey (the CLI) or
// DeriveSessionKey (the gateway), so a provider cannot confirm a guessed
// secret by hashing it, and every replica derives the same tokens.
//
// Values live only in a Vault, as byte slices it owns and zeroes on Clear.
// Nothing here logs, and every type that holds a key or a value (Key,
// Vault) formats, logs and marshals itself redacted. Detection and Stats
// carry offsets and tokens, never values. The one exception is the CLI's
// session file (WriteSessionFile), which exists to keep a session between
// runs and so holds the key and the values; it is written 0600.
//
// Usage, as the CLI does it:
//
//	key, err := token.NewRandomKey()
//	if err != nil { ... }
//	vault, err := token.NewVault(key, token.Limits{})
//	if err != nil { ... }
//	eng, err := detect.New(detect.Options{})
//	if err != nil { ... }
//	res, err := token.Tokenizer{Engine: eng}.Tokenize(vault, src)
//	if err != nil { ... } // ErrVaultFull: fail, never pass src through
//	if res.Blocked() { ... } // a Block rule matched: reject
//	// send res.Text; list res.Detections (no values in them)
//	if err := vault.WriteSessionFile(".takumo-session"); err != nil { ... }
//
//	// later, perhaps in another run:
//	vault, err = token.ReadSessionFile(".takumo-session")
//	if err != nil { ... } // a file others can read is refused: chmod 600
//	out, stats := token.Rehydrate(vault, reply, token.Raw)
//	// stats.Unknown tokens were left as they are
//
// In a stream, one StreamRehydrator per content stream:
//
//	sr := token.NewStreamRehydrator(vault, token.JSONString)
//	for chunk := range chunks { emit(sr.Write(chunk)) }
//	emit(sr.Flush()) // before the stream's end event
package token
