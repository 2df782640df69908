// Oracle: Hugging Face's tokenizers.js on a tokenizer folder. Reads a JSONL file of strings and
// prints, per line, {"ids": encode(s).ids, "decoded": decode(ids)}.
// Usage: node tests/node/tokenize.mjs TOKENIZER_DIR STRINGS.jsonl
import { Tokenizer } from "@huggingface/tokenizers";
import fs from "fs";

const [dir, file] = process.argv.slice(2);
const tj = JSON.parse(fs.readFileSync(`${dir}/tokenizer.json`, "utf8"));
const cfgPath = `${dir}/tokenizer_config.json`;
const tc = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {};
const tok = new Tokenizer(tj, tc);
const out = [];
for (const line of fs.readFileSync(file, "utf8").split("\n")) {
  if (!line) continue;
  const ids = tok.encode(JSON.parse(line)).ids;
  out.push(JSON.stringify({ ids, decoded: ids.length ? tok.decode(ids) : "" }));
}
process.stdout.write(out.join("\n") + "\n");
