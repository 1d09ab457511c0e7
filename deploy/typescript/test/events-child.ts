// events-child.ts -- an app instance that dies with events in hand, for
// events.test.ts: it subscribes as consumer `doomed` of the group given,
// reads up to 50 entries at once, prints one JSON line per event its
// callback gets and never finishes a callback, so that nothing it read is
// acknowledged until the test kills it.
//
//   CREDITS_REDIS_URL=... CREDITS_PREFIX=... node events-child.js GROUP

import { subscribeEvents } from "../src/index.js";

const group = process.argv[2] ?? "";
await subscribeEvents({
    redis: process.env.CREDITS_REDIS_URL ?? "",
    prefix: process.env.CREDITS_PREFIX ?? "credits",
    group,
    consumer: "doomed",
    count: 50,
    onEvent: (event, delivery) => {
        process.stdout.write(`${JSON.stringify({ event_id: event.event_id, entryId: delivery.entryId })}\n`);
        return new Promise<void>(() => undefined);
    },
});
process.stdout.write("subscribed\n");
