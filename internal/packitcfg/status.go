package packitcfg

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// statusJobNames are the job-name parts of packit-service's check names.
// Types the reference does not name use their own name with dashes.
var statusJobNames = map[JobType]string{
	JobCoprBuild:         "rpm-build",
	JobTests:             "testing-farm",
	JobUpstreamKojiBuild: "koji-build",
	JobKojiBuild:         "koji-build",
	JobProposeDownstream: "propose-downstream",
	JobVMImageBuild:      "vm-image-build",
}

// StatusName is the commit status (check) name for one job view on one
// target, as packit-service names it: "{job_name}[:{event}][:{chroot}][:{identifier}]".
// ref is the pushed branch or the release tag; it appears only for builds
// and tests triggered by a commit or a release (":" becomes "-"). target is
// the chroot, or the dist-git branch for downstream jobs. In a monorepo the
// job's Identifier already defaults to the package name.
//
// A status_name_template replaces the default. It is a Python format string
// (str.format) with the fields job_name, chroot, event, identifier and
// package; if it cannot be rendered, Packit uses the default, and so does
// this function (Load has already warned about it).
func StatusName(job *Job, ref, target string) string {
	jobName, ok := statusJobNames[job.Type]
	if !ok {
		jobName = strings.ReplaceAll(string(job.Type), "_", "-")
	}
	event := ""
	if (job.Trigger == TriggerCommit || job.Trigger == TriggerRelease) &&
		(job.Type == JobCoprBuild || job.Type == JobTests || job.Type == JobUpstreamKojiBuild) {
		event = strings.ReplaceAll(ref, ":", "-")
	}
	if job.StatusNameTemplate != "" {
		if tmpl, err := parseStatusTemplate(job.StatusNameTemplate); err == nil {
			return tmpl.render(map[string]string{
				"job_name":   jobName,
				"chroot":     target,
				"event":      event,
				"identifier": job.Identifier,
				"package":    job.PackageName,
			})
		}
	}
	parts := []string{jobName}
	for _, p := range []string{event, target, job.Identifier} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ":")
}

var statusTemplateFields = []string{"job_name", "chroot", "event", "identifier", "package"}

// statusTemplate is a parsed format string: literal text and field names.
type statusTemplate []templatePart

type templatePart struct {
	literal string
	field   string
}

func (t statusTemplate) render(values map[string]string) string {
	var b strings.Builder
	for _, part := range t {
		if part.field != "" {
			b.WriteString(values[part.field])
		} else {
			b.WriteString(part.literal)
		}
	}
	return b.String()
}

// parseStatusTemplate parses the subset of Python's format syntax that
// status names need: literal text, "{{" and "}}" for braces, and "{field}".
// Conversions ("!r"), format specs (":>10"), indexing and positional
// fields are refused.
func parseStatusTemplate(s string) (statusTemplate, error) {
	var out statusTemplate
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '}':
			return nil, errors.New("single '}' encountered")
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, errors.New("single '{' encountered")
			}
			field := s[i+1 : i+end]
			if !slices.Contains(statusTemplateFields, field) {
				return nil, fmt.Errorf("unsupported field {%s} (available: %s)", field, strings.Join(statusTemplateFields, ", "))
			}
			if lit.Len() > 0 {
				out = append(out, templatePart{literal: lit.String()})
				lit.Reset()
			}
			out = append(out, templatePart{field: field})
			i += end
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		out = append(out, templatePart{literal: lit.String()})
	}
	return out, nil
}
