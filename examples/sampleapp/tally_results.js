// A one-time script: tallies a few results and prints the totals.
const results = ["pass", "pass", "fail", "pass", "skip"];
const tally = {};
for (const r of results) tally[r] = (tally[r] || 0) + 1;
for (const [k, v] of Object.entries(tally)) console.log(`${k}: ${v}`);
console.log(`total: ${results.length}`);
