// Admin actions on one inbox: rename, change settings (as JSON), delete.
import { api, inboxPath } from "./api.js";
import { el, notify } from "./dom.js";

/**
 * The PATCH body for the settings the user wrote: keys they removed become null (the
 * API merges), and verify secrets shown as a count are left out (they are write-only,
 * leaving them out keeps the stored ones).
 */
export function settingsPatch(current, written) {
  const patch = { ...written };
  for (const key of Object.keys(current)) if (!(key in written)) patch[key] = null;
  if (patch.verify && typeof patch.verify.secrets === "number") {
    const { secrets: _count, ...rest } = patch.verify;
    patch.verify = rest;
  }
  return patch;
}

export function manageForms(session, inbox, onChange) {
  const name = el("input", { id: "rename", name: "name", value: inbox.name ?? "", autocomplete: "off" });
  const rename = el(
    "form",
    { class: "inline", "aria-label": "Rename" },
    el("label", { for: "rename" }, "Name"),
    name,
    el("button", { type: "submit" }, "Rename"),
  );
  rename.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      onChange(await api(session.token, "PATCH", inboxPath(inbox.id), { name: name.value.trim() || null }));
      notify("Renamed.");
    } catch (error) {
      notify(`Not renamed: ${error.message}`, "error");
    }
  });

  const settings = el("textarea", { id: "settings", name: "settings", rows: 8, spellcheck: "false" });
  settings.value = JSON.stringify(inbox.settings ?? {}, null, 2);
  const settingsForm = el(
    "form",
    { "aria-label": "Settings" },
    el("label", { for: "settings" }, "Settings (JSON; verify secrets show as a count and are kept unless you write new ones)"),
    settings,
    el("button", { type: "submit" }, "Save settings"),
  );
  settingsForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const written = JSON.parse(settings.value || "{}");
      if (typeof written !== "object" || written === null || Array.isArray(written)) throw new Error("settings must be a JSON object");
      onChange(await api(session.token, "PATCH", inboxPath(inbox.id), { settings: settingsPatch(inbox.settings ?? {}, written) }));
      notify("Settings saved.");
    } catch (error) {
      notify(`Settings not saved: ${error.message}`, "error");
    }
  });

  const remove = el("button", { type: "button", class: "danger" }, "Delete inbox");
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete inbox ${inbox.name ?? inbox.id} and all its events? This cannot be undone.`)) return;
    try {
      await api(session.token, "DELETE", inboxPath(inbox.id));
      notify("Inbox deleted.");
      onChange(null);
    } catch (error) {
      notify(`Not deleted: ${error.message}`, "error");
    }
  });

  return el("details", { class: "manage card" }, el("summary", {}, "Manage this inbox"), rename, settingsForm, remove);
}
