// The official openai npm SDK against the infermux gateway. Env: BASE_URL (".../v1"), KEY, MODEL,
// SANDBOX_URL (optional: the emulator's control API, to queue a 429 and a 503), TOOLS ("1": check tool calls).
// Prints one JSON object with what it saw; the Python test asserts on it.
import OpenAI from "openai";

const out = {};
const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: process.env.KEY, maxRetries: 0, timeout: 30000 });
const model = process.env.MODEL;
const msgs = [{ role: "user", content: "What is the capital of France?" }];

const r = await client.chat.completions.create({ model, messages: msgs, max_tokens: 12, temperature: 0 });
out.chat = r.choices[0].message.content;
out.finish = r.choices[0].finish_reason;

let text = "";
const stream = await client.chat.completions.create({ model, messages: msgs, max_tokens: 12, temperature: 0, stream: true });
for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
out.stream = text;

const e = await client.embeddings.create({ model: process.env.EMBED_MODEL ?? model, input: ["Paris is in France.", "Cats sleep."] });
out.embeddings = [e.data.length, e.data[0].embedding.length];

if (process.env.TOOLS === "1") {
  const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }];
  const t = await client.chat.completions.create({ model, messages: [{ role: "user", content: "Please call get_weather for Paris" }], tools });
  out.tool = t.choices[0].message.tool_calls?.[0]?.function?.name ?? null;
}

// a client that leaves a stream after the first chunk
const long = await client.chat.completions.create({ model, messages: [{ role: "user", content: "Count to one hundred." }], max_tokens: 200, stream: true });
for await (const chunk of long) { if (chunk.choices[0]?.delta?.content) break; }
out.left_stream = true;

const bad = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: "sk-wrong", maxRetries: 0 });
try { await bad.chat.completions.create({ model, messages: msgs }); out.unauth = "no error"; }
catch (err) { out.unauth = err.status; }

async function fault(spec) {
  await fetch(process.env.SANDBOX_URL + "/_sandbox/faults", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ push: spec }) });
}
if (process.env.SANDBOX_URL) {
  await fault({ kind: "status", status: 429, retry_after: 4 });
  try { await client.chat.completions.create({ model, messages: msgs }); out.rate_limited = "no error"; }
  catch (err) { out.rate_limited = [err.status, err.headers?.get?.("retry-after") ?? err.headers?.["retry-after"]]; }
  await fault({ kind: "status", status: 503 });
  try { await client.chat.completions.create({ model, messages: msgs }); out.server_error = "no error"; }
  catch (err) { out.server_error = err.status; }
}
console.log(JSON.stringify(out));
