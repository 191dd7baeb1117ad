package api_test

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

const openAPIFile = "../../docs/openapi.yaml"

// The packages whose routes the service registers under /api/v1.
var routePackages = []string{".", "../web", "../joblog"}

type openAPI struct {
	Paths      map[string]map[string]operation `yaml:"paths"`
	Components struct {
		Parameters map[string]parameter `yaml:"parameters"`
		Schemas    map[string]schema    `yaml:"schemas"`
	} `yaml:"components"`
}

type operation struct {
	Parameters []parameter `yaml:"parameters"`
	Responses  map[string]struct {
		Ref     string `yaml:"$ref"`
		Content map[string]struct {
			Schema schema `yaml:"schema"`
		} `yaml:"content"`
	} `yaml:"responses"`
}

type parameter struct {
	Ref      string `yaml:"$ref"`
	Name     string `yaml:"name"`
	In       string `yaml:"in"`
	Required bool   `yaml:"required"`
}

type schema struct {
	Ref        string            `yaml:"$ref"`
	Required   []string          `yaml:"required"`
	Properties map[string]schema `yaml:"properties"`
	AllOf      []schema          `yaml:"allOf"`
}

func loadOpenAPI(t *testing.T) openAPI {
	t.Helper()
	data, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", openAPIFile, err)
	}
	return doc
}

func (d openAPI) param(t *testing.T, p parameter) parameter {
	t.Helper()
	if p.Ref == "" {
		return p
	}
	got, ok := d.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
	if !ok {
		t.Fatalf("dangling parameter reference %s", p.Ref)
	}
	return got
}

// flatten resolves references and allOf into one object schema.
func (d openAPI) flatten(t *testing.T, s schema) schema {
	t.Helper()
	if s.Ref != "" {
		got, ok := d.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
		if !ok {
			t.Fatalf("dangling schema reference %s", s.Ref)
		}
		return d.flatten(t, got)
	}
	out := schema{Required: slices.Clone(s.Required), Properties: map[string]schema{}}
	for k, v := range s.Properties {
		out.Properties[k] = v
	}
	for _, part := range s.AllOf {
		p := d.flatten(t, part)
		out.Required = append(out.Required, p.Required...)
		for k, v := range p.Properties {
			out.Properties[k] = v
		}
	}
	return out
}

// registeredPatterns finds the route patterns the route packages pass to
// mux.Handle and mux.HandleFunc, read from their source.
func registeredPatterns(t *testing.T) []string {
	t.Helper()
	var out []string
	fset := token.NewFileSet()
	for _, dir := range routePackages {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) != 2 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
					return true
				}
				if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil {
						out = append(out, s)
					}
				}
				return true
			})
		}
	}
	return out
}

var wildcard = regexp.MustCompile(`\{([a-z_]+)(\.\.\.)?\}`)

// sampleRequest is a request that the pattern, and only it, should match.
func sampleRequest(method, path string) *http.Request {
	return httptest.NewRequest(method, wildcard.ReplaceAllString(path, "1"), nil)
}

func TestEveryAPIRouteIsDocumentedWithItsParameters(t *testing.T) {
	doc := loadOpenAPI(t)
	mux := routes(nil, t.TempDir())
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
			// What the document describes is what the service serves.
			if _, pattern := mux.Handler(sampleRequest(strings.ToUpper(method), path)); pattern != strings.ToUpper(method)+" "+path {
				t.Errorf("%s %s is documented, but the service routes it to %q", method, path, pattern)
			}
		}
	}
	var apiRoutes int
	for _, pattern := range registeredPatterns(t) {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok || !strings.HasPrefix(path, "/api/v1/") {
			continue
		}
		apiRoutes++
		if !documented[pattern] {
			t.Errorf("%s is registered but not in %s", pattern, openAPIFile)
			continue
		}
		op := doc.Paths[path][strings.ToLower(method)]
		params := map[string]parameter{}
		for _, p := range op.Parameters {
			p = doc.param(t, p)
			params[p.In+" "+p.Name] = p
		}
		for _, m := range wildcard.FindAllStringSubmatch(path, -1) {
			if p, ok := params["path "+m[1]]; !ok || !p.Required {
				t.Errorf("%s: path parameter %s is not documented as required", pattern, m[1])
			}
		}
		if len(op.Responses) == 0 {
			t.Errorf("%s documents no responses", pattern)
		}
	}
	// The source scan must see the routes, or the check above proves nothing.
	if apiRoutes < 10 {
		t.Fatalf("found only %d /api/v1 routes in %v", apiRoutes, routePackages)
	}
}

func TestResponsesHaveTheDocumentedFields(t *testing.T) {
	doc := loadOpenAPI(t)
	testdb.Each(t, func(t *testing.T, dbURL string) {
		st, base := setup(t, dbURL)
		ctx := context.Background()
		runID, jobID := plan(t, st, runSpec{projectID: 7, visibility: "public", trigger: "pull_request", ref: "topic", mr: 2, key: "mr"})
		if _, err := st.SetJobState(ctx, jobID, store.JobRunning, "building"); err != nil {
			t.Fatal(err)
		}
		committer := st.NewCommitter(4)
		defer committer.Close()
		if _, err := committer.Save(ctx, store.Delivery{Instance: "https://gitlab.example", ProjectID: 7, ProjectPath: "g/p7",
			EventHeader: "Merge Request Hook", EventKind: "merge_request", Headers: map[string]string{"X-Gitlab-Event": "Merge Request Hook"},
			Body: []byte("{}"), Outcome: store.OutcomeAccepted, ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := st.AddRejections(ctx, []store.Rejection{{Instance: "https://gitlab.example", ScopePath: "g", Count: 1,
			FirstAt: time.Now(), LastAt: time.Now(), LastReason: "wrong token"}}); err != nil {
			t.Fatal(err)
		}
		calls := []struct{ path, url string }{
			{"/api/v1/runs", "/api/v1/runs?limit=1"},
			{"/api/v1/runs/{id}", fmt.Sprintf("/api/v1/runs/%d", runID)},
			{"/api/v1/projects/{id}/runs", "/api/v1/projects/7/runs"},
			{"/api/v1/jobs/{id}", fmt.Sprintf("/api/v1/jobs/%d", jobID)},
			{"/api/v1/jobs/{id}/artifacts", fmt.Sprintf("/api/v1/jobs/%d/artifacts", jobID)},
			{"/api/v1/deliveries", "/api/v1/deliveries"},
			{"/api/v1/rejections", "/api/v1/rejections"},
		}
		for _, c := range calls {
			op, ok := doc.Paths[c.path]["get"]
			if !ok {
				t.Fatalf("GET %s is not documented", c.path)
			}
			want := doc.flatten(t, op.Responses["200"].Content["application/json"].Schema)
			var got map[string]any
			if code := getJSON(t, base+c.url, adminToken, &got); code != http.StatusOK {
				t.Fatalf("GET %s: %d %v", c.url, code, got)
			}
			for _, name := range want.Required {
				if _, ok := got[name]; !ok {
					t.Errorf("GET %s: no %q in %v", c.url, name, got)
				}
			}
			for name := range got {
				if _, ok := want.Properties[name]; !ok {
					t.Errorf("GET %s: field %q is not documented", c.url, name)
				}
			}
		}
	})
}
