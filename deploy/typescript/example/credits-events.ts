// credits-events.ts -- the worker's events in a web app: the low-credits
// banner and the expiry email ("250 paid credits expire in 7 days").
//
// Every instance of the app calls startCreditsEvents() once: the instances
// share the events through one consumer group, each event handled by one
// of them, at least once. Handling is idempotent, so an event delivered
// twice, or two events of a user handled out of order, change nothing: the
// banner follows each user's newest event (event_id order), and an email is
// queued once per event_id in the app's outbox, which its mail sender
// drains. `db` reaches the app's own tables and may SELECT credits.lots
// (a member of credits_reader).

import type { CreditsClient, CreditsEvent, EventOf, EventSubscription } from "../src/index.js";
import type pg from "pg";

/** The app's own tables (put them in its migrations). */
export const CREDITS_EVENTS_TABLES = `
CREATE TABLE IF NOT EXISTS app_credit_banners (
    user_id   text    PRIMARY KEY,
    below     boolean NOT NULL,   -- balance_low or balance_depleted came last
    threshold bigint,             -- the user's threshold, as the newest event that had one said
    event_id  bigint  NOT NULL    -- the newest event applied: an older one changes nothing
);
CREATE TABLE IF NOT EXISTS app_email_outbox (
    event_id   bigint      PRIMARY KEY,   -- one email per event, however often it is delivered
    user_id    text        NOT NULL,
    subject    text        NOT NULL,
    body       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz                -- set by the mail sender
);`;

const DAY_MS = 86_400_000;

/** The email about a lot about to expire: `paid` for a pack's lot (credits.lots.kind "pack"), else a grant's. */
export function expiryEmail(event: EventOf<"credits_expiring">, paid: boolean): { subject: string; body: string } {
    // Counted from the event's time, not from now: a redelivery writes the same email.
    const days = Math.max(1, Math.round((event.expires_at - event.at) / DAY_MS));
    const subject = `${event.credits} ${paid ? "paid" : "free"} credits expire in ${days} day${days === 1 ? "" : "s"}`;
    const date = new Date(event.expires_at).toUTCString();
    return { subject, body: `${subject}, on ${date}. Credits are spent soonest-expiring first: use them before then.` };
}

async function setBanner(db: pg.Pool, event: CreditsEvent, below: boolean, threshold: number | null): Promise<void> {
    await db.query(
        `INSERT INTO app_credit_banners (user_id, below, threshold, event_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO UPDATE
            SET below = EXCLUDED.below, threshold = coalesce(EXCLUDED.threshold, app_credit_banners.threshold),
                event_id = EXCLUDED.event_id
          WHERE app_credit_banners.event_id < EXCLUDED.event_id`,
        [event.user, below, threshold, event.event_id]);
}

/** Applies one event to the app's tables. Safe to run twice, and in any order. */
export async function handleCreditsEvent(db: pg.Pool, event: CreditsEvent): Promise<void> {
    switch (event.type) {
    case "balance_low":
        return setBanner(db, event, true, event.threshold);
    case "balance_depleted":
        return setBanner(db, event, true, null);
    case "balance_recovered":
        return setBanner(db, event, false, event.threshold);
    case "credits_expiring": {
        const { rows } = await db.query<{ kind: string }>("SELECT kind FROM credits.lots WHERE lot_id = $1", [event.lot]);
        const { subject, body } = expiryEmail(event, rows[0]?.kind === "pack");
        await db.query(
            `INSERT INTO app_email_outbox (event_id, user_id, subject, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT (event_id) DO NOTHING`,
            [event.event_id, event.user, subject, body]);
        return;
    }
    case "credits_expired":
    case "hold_expired":
        // The next page shows the balance they left; nothing to send.
        return;
    default: {
        // A type added to the package's union does not compile until it is handled above.
        const unhandled: never = event;
        return unhandled;
    }
    }
}

/** The banner for a page, from the live balance (readBalance) and the newest event: null when none is due. */
export async function readBanner(db: pg.Pool, user: string, total: number):
    Promise<{ kind: "empty" } | { kind: "low"; credits: number; threshold: number } | null> {
    const { rows } = await db.query<{ below: boolean; threshold: string | null }>(
        "SELECT below, threshold FROM app_credit_banners WHERE user_id = $1", [user]);
    const row = rows[0];
    // Credits bought since, without crossing the threshold upwards, send no
    // event: the live balance decides whether the banner still holds.
    if (!row?.below) return null;
    if (total === 0) return { kind: "empty" };
    const threshold = row.threshold === null ? null : Number(row.threshold);
    return threshold !== null && total < threshold ? { kind: "low", credits: total, threshold } : null;
}

/** Subscribes this instance to the events, as one of the app's group; stops when `signal` aborts. */
export function startCreditsEvents(credits: CreditsClient, db: pg.Pool, signal: AbortSignal): Promise<EventSubscription> {
    return credits.subscribe({
        group: "webapp",
        signal,
        onEvent: (event) => handleCreditsEvent(db, event),
        // Given up on (the database refused it 5 times) or no event at all: logged, then acknowledged.
        onDead: (dead) => console.error("credits event given up", dead.entryId, dead.reason,
            dead.reason === "invalid" ? dead.problem.message : dead.error),
    });
}
