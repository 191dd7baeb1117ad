package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// request is one page a reader asks for.
type request struct {
	page  string // the row of the report
	path  string
	admin bool // send the admin token
}

// pageOrder is the report's row order.
var pageOrder = []string{
	"home", "project: first page", "project: filtered", "project: deep ?before=", "project: small neighbour",
	"run: 1,000 jobs", "job: 1,000-line log", "job: no log",
	"api: runs", "api: project runs", "api: run of 1,000 jobs", "api: job", "api: deliveries",
}

// tour is the list of requests one reader makes in one round. Readers with
// an even number read as anyone (the big project is public); odd ones send
// the admin token, which also shows the private project. Every round picks
// new filters, cursors and jobs, so no two rounds ask the same thing.
func tour(rng *rand.Rand, s seeded, host string, admin bool) []request {
	project := "/p/" + host + "/" + bigProjectPath
	filters := []string{
		"?mr=" + strconv.FormatInt(s.MRs[rng.IntN(len(s.MRs))], 10),
		"?ref=" + url.QueryEscape(s.Branches[rng.IntN(len(s.Branches))]),
		"?trigger=release",
		"?ref=main&trigger=commit",
	}
	// Deep: somewhere in the oldest tenth of the big project's history.
	deep := s.BigRunIDs[rng.IntN(max(1, len(s.BigRunIDs)/10))]
	small := "/p/" + host + "/" + smallProjectPath(rng.IntN(smallProjects))
	if admin && rng.IntN(2) == 0 {
		small = "/p/" + host + "/" + privatePath
	}
	logged := s.LoggedJobIDs[rng.IntN(len(s.LoggedJobIDs))]
	plain := s.PlainJobIDs[rng.IntN(len(s.PlainJobIDs))]
	wide := strconv.FormatInt(s.WideRunID, 10)
	return []request{
		{page: "home", path: "/", admin: admin},
		{page: "project: first page", path: project, admin: admin},
		{page: "project: filtered", path: project + filters[rng.IntN(len(filters))], admin: admin},
		{page: "project: deep ?before=", path: project + "?before=" + strconv.FormatInt(deep, 10), admin: admin},
		{page: "project: small neighbour", path: small, admin: admin},
		{page: "run: 1,000 jobs", path: "/runs/" + wide, admin: admin},
		{page: "job: 1,000-line log", path: "/jobs/" + strconv.FormatInt(logged, 10), admin: admin},
		{page: "job: no log", path: "/jobs/" + strconv.FormatInt(plain, 10), admin: admin},
		{page: "api: runs", path: "/api/v1/runs", admin: admin},
		{page: "api: project runs", path: "/api/v1/projects/" + strconv.Itoa(bigProjectID) + "/runs?before=" +
			strconv.FormatInt(s.BigRunIDs[rng.IntN(len(s.BigRunIDs))], 10), admin: admin},
		{page: "api: run of 1,000 jobs", path: "/api/v1/runs/" + wide, admin: admin},
		{page: "api: job", path: "/api/v1/jobs/" + strconv.FormatInt(plain, 10), admin: admin},
		// The deliveries list is for operators only.
		{page: "api: deliveries", path: "/api/v1/deliveries?project_id=" + strconv.Itoa(bigProjectID), admin: true},
	}
}

// readers runs n readers until the deadline, each making its tours one
// request after another, and returns what each recorded. A request under
// way at the deadline finishes and counts; none starts after it.
func readers(ctx context.Context, deadline time.Time, n int, client *http.Client, base, adminToken string, s seeded, host string) []recorder {
	recs := make([]recorder, n)
	var wg sync.WaitGroup
	for i := range n {
		recs[i] = recorder{}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			for {
				for _, req := range tour(rng, s, host, i%2 == 1) {
					if ctx.Err() != nil || time.Now().After(deadline) {
						return
					}
					took, err := get(ctx, client, base+req.path, req.admin, adminToken)
					failure := ""
					if err != nil {
						failure = req.path + ": " + err.Error()
					}
					recs[i].record(req.page, took, failure)
				}
			}
		})
	}
	wg.Wait()
	return recs
}

// get fetches a page whole and wants a 200; the time is to the last byte.
func get(ctx context.Context, client *http.Client, url string, admin bool, adminToken string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if admin {
		req.Header.Set("Authorization", "Bearer "+adminToken)
	}
	began := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	took := time.Since(began)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("read the page: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("answered %d", resp.StatusCode)
	}
	if n == 0 {
		return 0, fmt.Errorf("answered an empty page")
	}
	return took, nil
}
