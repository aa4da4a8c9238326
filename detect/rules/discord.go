package rules

import (
	"encoding/base64"
	"regexp"
)

// Discord: bot tokens and webhook URLs.
//
// A bot token's first segment is the base64 of the bot's numeric user id, so
// its first three characters are fixed by the id's first two digits. Those
// 90 three-character prefixes are the keywords (matched case-sensitively):
// the two-character prefixes MT, Nj, … would fire all over ordinary text.
func discord() []Rule {
	return []Rule{
		{
			ID:            "discord-bot-token",
			Description:   "Discord bot token (base64 user id . timestamp . HMAC)",
			Category:      TOKEN,
			Keywords:      discordKeywords(),
			CaseSensitive: true,
			Anchored:      true,
			Pattern:       `(?:^|[^A-Za-z0-9_-])([MNO][A-Za-z0-9_-]{22,26}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38})(?:[^A-Za-z0-9_.-]|$)`,
			SecretGroup:   1,
			MaxLen:        80,
			Validate:      All(DiscordToken, MinEntropy(3.5)),
			Positives: []Sample{
				envSample("DISCORD_TOKEN", "MTU5MjgxMjgyODMzODEyODgwNA.uLZ3co.7sFnc6wg6iMmUXGLi7oES4DOWR0-5-hPRTc88L"),
				pySample("TOKEN", "MTE4MDkyMzk0MDIxOTQ1MDA4OA.7bBAHS.1t0OaB0Yi_sd1mz1rA1ed7U0_Jz0EfUB7a7Ycr"),
				textSample("client.login('", "MTUwMDAxNzg5MDIwMjc5MzAyMw.I_dMCk.uuwlx7Mq7fyt2L7yK7rl6f_yRyrikjndTIV2Iv", "');\n"),
			},
			Negatives: []string{
				"DISCORD_TOKEN=MTxxxxxxxxxxxxxxxxxxxxxxxx.xxxxxx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"token = \"MTAxYWJjZGVmZ2hpamtsbW5vcA.cLBt1z.67Gb98KOsqHg3dzT58voYF1vVLNU5QhliqPbyq\"\n",
				"version: NTA1.2.3\n",
			},
		},
		{
			ID:          "discord-webhook-url",
			Description: "Discord webhook URL (id and token in the path)",
			Category:    SECRET,
			Keywords:    []string{"discord.com/api/", "discordapp.com/api/"},
			Before:      16,
			Pattern:     `(https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api(?:/v\d{1,2})?/webhooks/\d{17,20}/[A-Za-z0-9_-]{60,70})(?:[^A-Za-z0-9_-]|$)`,
			SecretGroup: 1,
			MaxLen:      140,
			Validate:    All(discordWebhookID, MinEntropy(3.5)),
			Positives: []Sample{
				envSample("DISCORD_WEBHOOK_URL", "https://discord.com/api/webhooks/1399504072483870730/0dhOkHGAlfSIUx-ypn6hh8BQggfRlh7d-IgUaUh5Srmh42bs-E0zS-z9KuOX4FuL99l1"),
				jsonSample("webhook", "https://canary.discordapp.com/api/webhooks/988464531908142649/RJdHbF0pWCz8OaGeTX-5KaAExx-W0doGo7rrW9FOxdjt47uaRZP45Q-dtwT9wrm5ds9b"),
			},
			Negatives: []string{
				"DISCORD_WEBHOOK_URL=https://discord.com/api/webhooks/<id>/<token>\n",
				"url: https://discord.com/api/webhooks/0000000000000000000/31I5xWi8Jrt9d10nAS234ruW_TRpSkmFLivRvXodpEZy_aPcvPVkoG06LongZhNxrhB_\n",
				"url: https://discord.com/api/webhooks/1310535317301257393/SRUZK4A6p5Xu2ziWxwfV\n",
			},
		},
	}
}

// discordKeywords returns the first three base64 characters of every user
// id that starts with the digits 10 to 99.
func discordKeywords() []string {
	var kws []string
	for a := byte('1'); a <= '9'; a++ {
		for b := byte('0'); b <= '9'; b++ {
			kws = append(kws, base64.StdEncoding.EncodeToString([]byte{a, b, '0'})[:3])
		}
	}
	return kws
}

var discordWebhookRE = regexp.MustCompile(`/webhooks/(\d+)/`)

// discordWebhookID checks that the id in a Discord webhook URL is a
// plausible snowflake.
func discordWebhookID(b []byte) bool {
	m := discordWebhookRE.FindSubmatch(b)
	return m != nil && Snowflake(m[1])
}
