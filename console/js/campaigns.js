import { start } from "./shell.js";

await start("campaigns.html");
