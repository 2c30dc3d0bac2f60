/*
 * An inbox's verify settings cross to the writer thread as JSON text: one string is
 * cheap to send, and both sides keep the text ↔ object pairing, so neither encodes
 * nor parses per request (the compiled check is cached per settings object in core/verify).
 */
import { LRUCache } from "lru-cache";
import type { VerifySettings } from "../../core/verify/index.js";

/** Inbox settings objects come from the store's inbox cache, so one object is sent again and again. */
const texts = new WeakMap<VerifySettings, string>();

export function verifySettingsText(settings: VerifySettings): string {
  let text = texts.get(settings);
  if (text === undefined) texts.set(settings, (text = JSON.stringify(settings)));
  return text;
}

/** On the writer thread: the settings a text names (as many as the inbox cache holds). */
const parsed = new LRUCache<string, VerifySettings>({ max: 10_000 });

export function verifySettingsOf(text: string): VerifySettings {
  let settings = parsed.get(text);
  if (settings === undefined) parsed.set(text, (settings = JSON.parse(text) as VerifySettings));
  return settings;
}
