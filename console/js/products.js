import { start } from "./shell.js";

await start("products.html");
