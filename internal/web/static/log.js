// Follows a running job's log: appends each line the server streams.
// The page already holds the log so far; data-after says where it ends.
(function () {
	"use strict";
	var log = document.getElementById("log");
	if (!log || !window.EventSource || log.dataset.final === "true") {
		return;
	}
	var state = document.getElementById("job-state");
	var source = new EventSource(log.dataset.stream + "?after=" + encodeURIComponent(log.dataset.after || "0"));
	source.onmessage = function (ev) {
		var follow = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
		log.appendChild(document.createTextNode(ev.data + "\n"));
		if (follow) {
			window.scrollTo(0, document.body.scrollHeight);
		}
	};
	var description = document.getElementById("job-description");
	source.addEventListener("status", function (ev) {
		var status;
		try {
			status = JSON.parse(ev.data);
		} catch (e) {
			return;
		}
		if (state) {
			state.textContent = status.state;
			state.className = "state " + status.state;
		}
		if (description) {
			description.textContent = status.description;
		}
	});
	source.addEventListener("end", function (ev) {
		source.close();
		if (state) {
			state.textContent = ev.data;
			state.className = "state " + ev.data;
		}
	});
})();
