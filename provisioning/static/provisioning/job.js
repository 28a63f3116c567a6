// Live progress for a provisioning job page: polls the job's status.json every two
// seconds and updates the bar and figures in place, until the job has finished.
(function () {
  "use strict";
  var root = document.getElementById("job");
  if (!root) return;
  var url = root.getAttribute("data-status-url");
  var delayMs = 2000;

  function text(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value === null || value === undefined ? "–" : String(value);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 60) return seconds + " s";
    var m = Math.floor(seconds / 60), s = seconds % 60;
    if (m < 60) return m + " min " + s + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }

  function render(s) {
    var bar = document.getElementById("job-progress");
    if (bar && s.percent !== null) bar.value = s.percent;
    if (bar && s.finished && s.percent === null) bar.value = 0;
    text("job-state", s.state_label);
    text("job-batches", s.batches_done);
    text("job-total-batches", s.total_batches === null ? "?" : s.total_batches);
    text("job-users", s.users_done);
    text("job-total-users", s.total_users === null ? "?" : s.total_users);
    text("job-percent", s.percent);
    text("job-rate", s.users_per_second);
    text("job-eta", duration(s.seconds_left));
    text("job-not-provisioned", s.not_provisioned_count);
    var users = document.getElementById("job-not-provisioned-link");
    if (users) users.hidden = !s.not_provisioned_count;
    text("job-attempts", s.attempts);
    var rows = [];
    for (var table in s.rows_created) rows.push(s.rows_created[table] + " " + table);
    text("job-rows", rows.join(", "));
    text("job-worker", s.worker_note);
    var error = document.getElementById("job-error");
    if (error) { error.textContent = s.error; error.hidden = !s.error; }
    var cancel = document.getElementById("job-cancel-form");
    if (cancel && s.finished) cancel.hidden = true;
    var button = document.getElementById("job-cancel");
    if (button && s.cancel_requested) button.disabled = true;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (s) {
        render(s);
        if (!s.finished) window.setTimeout(poll, delayMs);
        // Once it ended, load the page again: it lists the failures by reason, read from
        // the run's audit events.
        else if (s.not_provisioned_count) window.location.reload();
      })
      .catch(function () {
        // The server restarted or the network blipped: the job lives in the database,
        // so keep asking, a little less often.
        window.setTimeout(poll, delayMs * 3);
      });
  }

  if (root.getAttribute("data-finished") !== "1") window.setTimeout(poll, delayMs);
})();
