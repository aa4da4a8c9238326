import os

import anthropic
from openai import OpenAI

# quick experiment, do not commit
client = OpenAI(api_key="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")
claude = anthropic.Anthropic(api_key="sk-ant-api03-dBnXbF7J6HaGLJ5_0S6gRMHJakpWqz4AZJxYafEYRK1M4QtbZ_ACUnlXkVKcf5K4ayWzwqyeLx9wW3iHi9e-7AynKtuedAA")

SYSTEM_PROMPT = "You are a helpful assistant that summarises support tickets."


def summarise(ticket: str, provider: str = "openai") -> str:
    if provider == "openai":
        resp = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": ticket}],
            max_tokens=400,
        )
        return resp.choices[0].message.content
    msg = claude.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=400,
        system=SYSTEM_PROMPT,
        messages=[{"role": "user", "content": ticket}],
    )
    return msg.content[0].text


def token_budget(text: str) -> int:
    # rough: 4 characters per token
    return max(1, len(text) // 4)


if __name__ == "__main__":
    print(summarise(open(os.environ.get("TICKET_FILE", "ticket.txt")).read()))
