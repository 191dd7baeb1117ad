package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/gitlabsim"
)

// openedMR is one merge request the load opened, with the schedule's view
// of it. Latencies come from the simulator's records, not from these times.
type openedMR struct {
	ProjectID int64
	IID       int64
	HeadSHA   string
	// Planned is when the schedule meant to start it, Started when its push
	// began and Opened when the simulator had opened it.
	Planned, Started, Opened time.Time
}

// mrKey names a merge request across projects.
type mrKey struct {
	projectID, iid int64
}

// commitKey names a head commit across projects.
type commitKey struct {
	projectID int64
	sha       string
}

// summary is what the simulator recorded about the opened merge requests.
type summary struct {
	Opened int
	// OpenDeliveries counts the "open" Merge Request Hook deliveries the
	// simulator sent for them, Answered202 those upbuild answered with 202.
	OpenDeliveries, Answered202 int
	// PushDeliveries and PushAnswered202 are the same for the branch pushes.
	PushDeliveries, PushAnswered202 int
	// WithPending counts merge requests whose head got a "pending" status;
	// PendingFirst those whose very first status transition was to pending.
	WithPending, PendingFirst int
	// AllFinal counts heads whose statuses were all final at the end.
	AllFinal int
	// ToPending holds "202 → first pending" per merge request that has both,
	// ToFirstStatus "202 → first status in any state",
	// ToFinal "202 → last status final" per merge request whose statuses
	// are all final.
	ToPending, ToFirstStatus, ToFinal []time.Duration
	// ToConfigRead and ToStatusCall break "202 → first pending" down from
	// the simulator's side: when upbuild's first repository read at the
	// head (after the 202) and its first status write for it arrived.
	ToConfigRead, ToStatusCall []time.Duration
	// Refused counts the deliveries not answered 202, by event and answer.
	Refused map[string]int
	// MissingPending lists merge requests with no pending status.
	MissingPending []openedMR
}

// hookBody is the part of a Merge Request Hook payload that identifies it.
type hookBody struct {
	ObjectAttributes struct {
		IID    int64  `json:"iid"`
		Action string `json:"action"`
	} `json:"object_attributes"`
}

// summarize matches each opened merge request with the delivery of its
// "open" hook and with the status transitions of its head commit.
func summarize(mrs []openedMR, deliveries []gitlabsim.Delivery, transitions []gitlabsim.StatusTransition, calls []apiCall) summary {
	wanted := make(map[mrKey]bool, len(mrs))
	for _, mr := range mrs {
		wanted[mrKey{mr.ProjectID, mr.IID}] = true
	}
	var s summary
	answeredAt := map[mrKey]time.Time{}
	for _, d := range deliveries {
		if d.Resend || d.Skipped {
			continue
		}
		if d.StatusCode != http.StatusAccepted {
			if s.Refused == nil {
				s.Refused = map[string]int{}
			}
			s.Refused[refusal(d)]++
		}
		switch d.Event {
		case "Push Hook":
			s.PushDeliveries++
			if d.StatusCode == http.StatusAccepted {
				s.PushAnswered202++
			}
		case "Merge Request Hook":
			var body hookBody
			if json.Unmarshal(d.Body, &body) != nil || body.ObjectAttributes.Action != "open" {
				continue
			}
			key := mrKey{d.ProjectID, body.ObjectAttributes.IID}
			if !wanted[key] {
				continue
			}
			s.OpenDeliveries++
			if d.StatusCode == http.StatusAccepted {
				s.Answered202++
				answeredAt[key] = d.SentAt.Add(d.Latency)
			}
		}
	}

	firstPending := map[commitKey]time.Time{}
	firstTo := map[commitKey]string{}
	firstAt := map[commitKey]time.Time{}
	state := map[commitKey]map[string]string{}
	lastChange := map[commitKey]time.Time{}
	for _, t := range transitions {
		key := commitKey{t.ProjectID, t.SHA}
		if _, seen := firstTo[key]; !seen {
			firstTo[key], firstAt[key] = t.To, t.At
		}
		if _, seen := firstPending[key]; !seen && t.To == "pending" {
			firstPending[key] = t.At
		}
		if state[key] == nil {
			state[key] = map[string]string{}
		}
		state[key][t.Name] = t.To
		lastChange[key] = t.At
	}

	callsAt := map[commitKey][]apiCall{}
	for _, c := range calls {
		if c.SHA != "" {
			key := commitKey{c.Project, c.SHA}
			callsAt[key] = append(callsAt[key], c)
		}
	}

	s.Opened = len(mrs)
	for _, mr := range mrs {
		head := commitKey{mr.ProjectID, mr.HeadSHA}
		t0, answered := answeredAt[mrKey{mr.ProjectID, mr.IID}]
		if answered {
			s.addStages(t0, callsAt[head])
		}
		t1, pending := firstPending[head]
		if !pending {
			s.MissingPending = append(s.MissingPending, mr)
		} else {
			s.WithPending++
			if answered {
				s.ToPending = append(s.ToPending, t1.Sub(t0))
			}
		}
		if firstTo[head] == "pending" {
			s.PendingFirst++
		}
		if first, ok := firstAt[head]; ok && answered {
			s.ToFirstStatus = append(s.ToFirstStatus, first.Sub(t0))
		}
		if allFinal(state[head]) {
			s.AllFinal++
			if answered {
				s.ToFinal = append(s.ToFinal, lastChange[head].Sub(t0))
			}
		}
	}
	return s
}

// refusal describes how a delivery was answered when it was not a 202.
func refusal(d gitlabsim.Delivery) string {
	if d.StatusCode == 0 {
		return d.Event + ": " + d.Err
	}
	return fmt.Sprintf("%s: HTTP %d", d.Event, d.StatusCode)
}

// addStages notes when the first repository read after t0 and the first
// status write of a head arrived at the simulator.
func (s *summary) addStages(t0 time.Time, calls []apiCall) {
	read, status := false, false
	for _, c := range calls {
		switch {
		case !read && strings.HasPrefix(c.Route, "GET ") && !c.At.Before(t0):
			read = true
			s.ToConfigRead = append(s.ToConfigRead, c.At.Sub(t0))
		case !status && strings.HasPrefix(c.Route, "POST ") && strings.Contains(c.Route, "/statuses/"):
			status = true
			s.ToStatusCall = append(s.ToStatusCall, c.At.Sub(t0))
		}
	}
}

// outstanding counts the merge requests whose head has no pending status
// yet or a status that is not final.
func outstanding(mrs []openedMR, transitions []gitlabsim.StatusTransition) int {
	pending := map[commitKey]bool{}
	state := map[commitKey]map[string]string{}
	for _, t := range transitions {
		key := commitKey{t.ProjectID, t.SHA}
		pending[key] = pending[key] || t.To == "pending"
		if state[key] == nil {
			state[key] = map[string]string{}
		}
		state[key][t.Name] = t.To
	}
	n := 0
	for _, mr := range mrs {
		head := commitKey{mr.ProjectID, mr.HeadSHA}
		if !pending[head] || !allFinal(state[head]) {
			n++
		}
	}
	return n
}

// allFinal says whether a commit has statuses and none of them can change
// by itself any more.
func allFinal(states map[string]string) bool {
	for _, st := range states {
		switch st {
		case "success", "failed", "canceled", "skipped":
		default:
			return false
		}
	}
	return len(states) > 0
}
