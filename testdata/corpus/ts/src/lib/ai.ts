import Anthropic from '@anthropic-ai/sdk';

export const anthropic = new Anthropic({
  apiKey: process.env.ANTHROPIC_API_KEY ?? 'sk-ant-api03-mQKRM5w9YO7F32MRCSwZWZMZvhjO6pXSyC_qrBL0SWB_ll5LyXnAYFCFv8HntfLaPfO9NQheDFnnTgnLwVVPnmK8me62-AA',
  maxRetries: 3,
});

export const OPENAI_BASE_URL = 'https://api.openai.com/v1';
const OPENAI_KEY = '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';

export async function embed(text: string): Promise<number[]> {
  const res = await fetch(`${OPENAI_BASE_URL}/embeddings`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${OPENAI_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'text-embedding-3-small', input: text }),
  });
  const json = await res.json();
  return json.data[0].embedding;
}
