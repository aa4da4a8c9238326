package rules

// Telegram bot tokens (bot id : AA + 33 characters).
func telegram() []Rule {
	return []Rule{
		{
			ID:            "telegram-bot-token",
			Description:   "Telegram bot API token (<bot id>:AA…)",
			Category:      TOKEN,
			Keywords:      []string{":AA"},
			CaseSensitive: true,
			Before:        12,
			Pattern:       `(?:^|[^0-9A-Za-z_]|bot)(\d{8,12}:AA[A-Za-z0-9_-]{31,33})` + endWord,
			SecretGroup:   1,
			MaxLen:        40,
			Validate:      MinEntropy(3.5),
			Positives: []Sample{
				envSample("TELEGRAM_BOT_TOKEN", "0119181666:AAJPJGfqYjfUfbEwzamuV2ZRHbNrCmEXtIr"),
				textSample("curl https://api.telegram.org/bot", "979589337:AAdM7ThuRiXMCdGkgcMRnd2DwO0j9f2MfK", "/getMe\n"),
			},
			Negatives: []string{
				"TELEGRAM_BOT_TOKEN=123456789:AAxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"TELEGRAM_BOT_TOKEN=8970668601:AApKV5LP1SUwjD\n",
				"time 12:AA:00\n",
			},
		},
	}
}
