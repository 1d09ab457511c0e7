// @credits-worker/client/drizzle -- the credits tables for Drizzle ORM, and
// the balance, history and expiry reads over them.
export * from "./schema.js";
export * from "./queries.js";
