// The official TypeScript SDK's messages.stream through the gateway.
// Usage: node sdk_stream.mjs BASE_URL KEY [PROMPT]  (NODE_EXTRA_CA_CERTS trusts the test CA)
// Prints one JSON line: the text, the final message's stop reason, usage and content
// blocks (tool inputs as the SDK accumulated them), the events.
import Anthropic from "@anthropic-ai/sdk";

const [baseURL, apiKey, prompt = "hi"] = process.argv.slice(2);
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0 });
const events = [];
const stream = client.messages.stream({
  model: "claude-sonnet-5-5",
  max_tokens: 64,
  messages: [{ role: "user", content: prompt }],
});
let text = "";
stream.on("text", (delta) => {
  text += delta;
});
stream.on("streamEvent", (event) => events.push(event.type));
const final = await stream.finalMessage();
const { stop_reason, usage, content } = final;
console.log(JSON.stringify({ text, stop_reason, usage, content, events }));
