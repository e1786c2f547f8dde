// The official TypeScript SDK's messages.stream through the gateway.
// Usage: node sdk_stream.mjs BASE_URL KEY  (NODE_EXTRA_CA_CERTS trusts the test CA)
// Prints one JSON line: the text, the final message's stop reason and usage, the events.
import Anthropic from "@anthropic-ai/sdk";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0 });
const events = [];
const stream = client.messages.stream({
  model: "claude-sonnet-5-5",
  max_tokens: 64,
  messages: [{ role: "user", content: "hi" }],
});
let text = "";
stream.on("text", (delta) => {
  text += delta;
});
stream.on("streamEvent", (event) => events.push(event.type));
const final = await stream.finalMessage();
console.log(JSON.stringify({ text, stop_reason: final.stop_reason, usage: final.usage, events }));
