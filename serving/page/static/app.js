// churnclv's page: asks for the API key once, keeps it in sessionStorage (this tab only) and sends it as
// a header; fetches server-rendered HTML parts and swaps them in. Errors are the service's JSON format:
// the message is shown and the fields it names are marked. No library, no build step.
"use strict";

const STORE = "churnclv.key";
const $ = (selector, root = document) => root.querySelector(selector);

function headers(key) {
  return { Authorization: "Bearer " + (key || sessionStorage.getItem(STORE) || "") };
}

async function problem(response) {
  try {
    const { error } = await response.json();
    return { status: response.status, message: error.message, details: error.details || [] };
  } catch {
    return { status: response.status, message: `The service answered ${response.status}.`, details: [] };
  }
}

function showProblem(section, found) {
  const box = $(":scope > .error", section);
  section.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  if (!box) return;
  box.hidden = !found;
  box.textContent = found ? found.message : "";
  if (!found) return;
  for (const detail of found.details) {
    const input = detail.field && section.querySelector(`[name="${detail.field.split(".")[0]}"]`);
    if (input) input.setAttribute("aria-invalid", "true");
  }
}

// Fetch a part into a container (GET, or POST of a form as {"query": ...}); true when it was swapped in.
async function load(url, into, query) {
  const target = typeof into === "string" ? $(into) : into;
  const section = target.closest("section[id]") || target;
  const content = target.matches("section") ? $(":scope > .content", target) : target;
  const focused = document.activeElement && document.activeElement.id;
  target.setAttribute("aria-busy", "true");
  try {
    const response = query === undefined
      ? await fetch(url, { headers: headers() })
      : await fetch(url, { method: "POST", headers: { ...headers(), "Content-Type": "application/json" },
                           body: JSON.stringify({ query }) });
    if (response.status === 401) {
      signOut("The key was not accepted any more: sign in again.");
      return false;
    }
    if (!response.ok) {
      showProblem(section, await problem(response));
      return false;
    }
    content.innerHTML = await response.text();
    showProblem(section, null);
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
    return true;
  } catch (err) {
    showProblem(section, { message: "The service could not be reached: " + err.message, details: [] });
    return false;
  } finally {
    target.removeAttribute("aria-busy");
  }
}

function show(name) {
  for (const section of document.querySelectorAll("main > section")) {
    section.hidden = section.id !== name;
  }
  for (const button of document.querySelectorAll("#nav [data-section]")) {
    if (button.dataset.section === name) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  const section = document.getElementById(name);
  if (section.dataset.part && !section.dataset.loaded) {
    section.dataset.loaded = "yes";
    load(section.dataset.part, section);
  }
  if (name !== "login" && location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
}

function signIn() {
  $("#nav").hidden = false;
  const wanted = location.hash.slice(1);
  show(["overview", "plan", "customer", "campaigns"].includes(wanted) ? wanted : "overview");
}

function signOut(message) {
  sessionStorage.removeItem(STORE);
  for (const section of document.querySelectorAll("section[data-part]")) {
    delete section.dataset.loaded;
    $(":scope > .content", section).innerHTML = "";
  }
  $("#customer-view").innerHTML = "";
  $("#nav").hidden = true;
  show("login");
  const error = $("#login-error");
  error.hidden = !message;
  error.textContent = message || "";
  $("#api-key").focus();
}

async function tryKey(event) {
  event.preventDefault();
  const key = $("#api-key").value.trim();
  const error = $("#login-error");
  const response = await fetch("/app/overview", { headers: headers(key) }).catch((err) => err);
  if (response instanceof Error || response.status === 401 || response.status === 403) {
    error.hidden = false;
    error.textContent = response instanceof Error
      ? "The service could not be reached: " + response.message
      : "That key was not accepted. Check it and try again.";
    $("#api-key").setAttribute("aria-invalid", "true");
    return;
  }
  $("#api-key").removeAttribute("aria-invalid");
  $("#api-key").value = "";
  error.hidden = true;
  sessionStorage.setItem(STORE, key);
  const overview = $("#overview");
  if (response.ok) {  // the answer that proved the key is the overview itself
    $(":scope > .content", overview).innerHTML = await response.text();
    overview.dataset.loaded = "yes";
  }
  signIn();
}

function formUrl(form) {
  const query = new URLSearchParams(new FormData(form)).toString();
  return form.dataset.get + (query ? "?" + query : "");
}

async function download(button) {
  const response = await fetch(button.dataset.csv, { headers: headers() });
  const section = button.closest("section[id]");
  if (!response.ok) {
    showProblem(section, await problem(response));
    return;
  }
  const name = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "");
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = name ? name[1] : "contact-plan.csv";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// After a campaign is recorded: the list below the form again, the new campaign's view kept.
async function refreshCampaigns() {
  const response = await fetch("/app/campaigns", { headers: headers() });
  if (!response.ok) return;
  const holder = document.createElement("div");
  holder.innerHTML = await response.text();
  const fresh = $("#campaign-list", holder) || $(".empty", holder);
  const current = $("#campaigns .scroll") || $("#campaigns > .content > .empty");
  if (fresh && current) current.replaceWith(fresh.closest(".scroll") || fresh);
}

async function openCustomer(id) {
  show("customer");
  $("#customer-id").value = id;
  await load("/app/customer?" + new URLSearchParams({ id }), "#customer-view");
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", tryKey);
  $("#sign-out").addEventListener("click", () => signOut(""));
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset.post) {
      event.preventDefault();
      load(form.dataset.post, form.dataset.into, new URLSearchParams(new FormData(form)).toString())
        .then((done) => { if (done) refreshCampaigns(); });
      return;
    }
    if (!form.dataset.get) return;
    event.preventDefault();
    load(formUrl(form), form.dataset.into);
  });
  document.addEventListener("change", (event) => {
    const input = event.target;
    if (input.name !== "plan_by") return;  // only the chosen limit is sent
    input.form.elements.budget.disabled = input.value !== "budget";
    input.form.elements.contacts.disabled = input.value !== "contacts";
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.section) show(button.dataset.section);
    else if (button.dataset.customer) openCustomer(button.dataset.customer);
    else if (button.dataset.csv) download(button);
    else if (button.dataset.get) load(button.dataset.get, button.dataset.into);
  });
  if (sessionStorage.getItem(STORE)) signIn();
  else show("login");
});
