// The model picker: GET v1/models, grouped by provider when there are several; the choice
// is remembered in the store's preferences.

import { el } from "./dom.js";
import { app, els } from "./state.js";
import { loadPrefs, savePrefs } from "./store.js";
import { authFetch } from "./token.js";

export async function loadModels() {
  let list = [];
  try {
    const resp = await authFetch("v1/models", { headers: { Accept: "application/json" } });
    if (resp.ok) {
      const body = await resp.json();
      list = Array.isArray(body) ? body : Array.isArray(body?.data) ? body.data : Array.isArray(body?.models) ? body.models : [];
    }
  } catch {
    /* keep the default entry */
  }
  app.models = list
    .map((m) => (typeof m === "string" ? { id: m } : m))
    .filter((m) => m && typeof m.id === "string")
    .map((m) => ({ id: m.id, provider: m.provider ?? null, label: m.name || m.id, owner: m.provider || m.owned_by || "" }));
  if (!app.models.length) return;
  const prefs = loadPrefs();
  const groups = new Map();
  app.models.forEach((m, i) => {
    const key = m.owner || "";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push([m, i]);
  });
  const options = [];
  for (const [owner, items] of groups) {
    const parent = groups.size > 1 && owner ? el("optgroup") : null;
    if (parent) parent.label = owner;
    for (const [m, i] of items) {
      const opt = el("option", "", m.label);
      opt.value = String(i);
      if (m.id === prefs.model && (m.provider ?? null) === (prefs.provider ?? null)) opt.selected = true;
      (parent || { append: (o) => options.push(o) }).append(opt);
    }
    if (parent) options.push(parent);
  }
  els.model.replaceChildren(...options);
  els.model.title = els.model.selectedOptions[0]?.textContent || "";
}

export function watchModelPicker() {
  els.model.addEventListener("change", () => {
    const m = app.models[Number(els.model.value)];
    savePrefs({ model: m?.id ?? null, provider: m?.provider ?? null });
    els.model.title = els.model.selectedOptions[0]?.textContent || "";
  });
}
