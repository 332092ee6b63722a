// `npm run gen`: regenerates src/gen from ../proto.
import { bufGenerate } from "./buf.mjs";

bufGenerate();
console.log("src/gen regenerated from ../proto");
