// Baseline for `moe bench tokenizer`: Hugging Face's tokenizers.js (tests/node) on the same text,
// load time and encode speed, median of repeats.
// Usage: node bench/tokenizers_js.mjs TOKENIZER_DIR TEXT_FILE
import fs from "fs";
import path from "path";
import { fileURLToPath } from "url";

const here = path.dirname(fileURLToPath(import.meta.url));
const { Tokenizer } = await import(path.join(here, "..", "tests", "node", "node_modules", "@huggingface", "tokenizers", "dist",
                                             "tokenizers.mjs"));
const [dir, file] = process.argv.slice(2);
const text = fs.readFileSync(file, "utf8");
const median = (f, seconds) => {
  const t = [];
  const start = performance.now();
  while (t.length < 3 || performance.now() - start < seconds * 1000) {
    const t0 = performance.now();
    f();
    t.push((performance.now() - t0) / 1000);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
};
const cfgPath = `${dir}/tokenizer_config.json`;
const load = () => new Tokenizer(JSON.parse(fs.readFileSync(`${dir}/tokenizer.json`, "utf8")),
                                 fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {});
const loadS = median(load, 3);
const tok = load();
let ids = tok.encode(text).ids;
const encS = median(() => { ids = tok.encode(text).ids; }, 1);
const mb = Buffer.byteLength(text, "utf8") / 1e6;
console.log(JSON.stringify({ load_seconds: loadS, encode_mb_per_s: mb / encS, tokens: ids.length }));
