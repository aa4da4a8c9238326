package token_test

import (
	"fmt"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/detect/rules"
	"github.com/takumo/aegis/token"
)

func Example() {
	// A fixed key keeps the output stable; use token.NewRandomKey or
	// token.DeriveSessionKey for real.
	kb := make([]byte, token.KeySize)
	for i := range kb {
		kb[i] = byte(i + 1)
	}
	key, err := token.KeyFromBytes(kb)
	if err != nil {
		panic(err)
	}
	vault, err := token.NewVault(key, token.Limits{})
	if err != nil {
		panic(err)
	}
	eng, err := detect.New(detect.Options{Rules: []rules.Rule{{
		ID: "aws-access-key-id", Category: rules.KEY, Keywords: []string{"AKIA"}, CaseSensitive: true,
		Pattern: `\b(AKIA[A-Z2-7]{16})\b`, SecretGroup: 1,
	}}})
	if err != nil {
		panic(err)
	}

	res, err := token.Tokenizer{Engine: eng}.Tokenize(vault, []byte(`id = "AKIA4HJX7QWERT2UVMNP"`))
	if err != nil {
		panic(err) // token.ErrVaultFull: fail the request
	}
	fmt.Println(string(res.Text))
	for _, d := range res.Detections {
		fmt.Println(d.RuleID, d.Category, d.Action, d.Start, d.End, d.Token)
	}

	// The model answers with the token, Markdown-escaped, in a JSON string.
	reply := []byte(`{"text":"use \\_\\_TAKUMO\\_v1\\_KEY\\_5c940c53\\_\\_ and __TAKUMO_v1_KEY_00000000__"}`)
	out, st := token.Rehydrate(vault, reply, token.JSONString)
	fmt.Println(string(out))
	fmt.Println(st.Replaced, st.Unknown, st.UnknownTokens)
	fmt.Println(vault)
	// Output:
	// id = "__TAKUMO_v1_KEY_5c940c53__"
	// aws-access-key-id KEY tokenize 6 26 __TAKUMO_v1_KEY_5c940c53__
	// {"text":"use AKIA4HJX7QWERT2UVMNP and __TAKUMO_v1_KEY_00000000__"}
	// 1 1 [__TAKUMO_v1_KEY_00000000__]
	// token.Vault(1 entries)
}

func ExampleStreamRehydrator() {
	key, err := token.NewRandomKey()
	if err != nil {
		panic(err)
	}
	vault, err := token.NewVault(key, token.Limits{})
	if err != nil {
		panic(err)
	}
	tok, err := vault.Token(detect.SECRET, []byte("hunter2-but-longer"))
	if err != nil {
		panic(err)
	}
	sr := token.NewStreamRehydrator(vault, token.Raw)
	// The token arrives cut in three.
	for _, chunk := range []string{"pw is " + tok[:5], tok[5:20], tok[20:] + "."} {
		fmt.Printf("%q\n", sr.Write([]byte(chunk)))
	}
	fmt.Printf("%q\n", sr.Flush())
	// Output:
	// "pw is "
	// ""
	// "hunter2-but-longer."
	// ""
}
