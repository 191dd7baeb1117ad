package settings

import (
	"fmt"
	"slices"
	"strings"
)

// Diff says what changed from old to new, one line per setting, in words
// for the audit log. Nothing changed gives nil.
func Diff(old, new Settings) []string {
	var out []string
	if !slices.Equal(old.Targets, new.Targets) {
		out = append(out, fmt.Sprintf("targets: %s → %s", listOrNone(old.Targets), listOrNone(new.Targets)))
	}
	if old.ApprovalPolicy != new.ApprovalPolicy {
		out = append(out, fmt.Sprintf("approval policy: %s → %s", policyName(old.ApprovalPolicy), policyName(new.ApprovalPolicy)))
	}
	if old.StatusNameTemplate != new.StatusNameTemplate {
		out = append(out, fmt.Sprintf("status name template: %s → %s", quoteOrNone(old.StatusNameTemplate), quoteOrNone(new.StatusNameTemplate)))
	}
	if old.FallbackConfig != new.FallbackConfig {
		switch {
		case old.FallbackConfig == "":
			out = append(out, fmt.Sprintf("fallback config set (%d lines)", lines(new.FallbackConfig)))
		case new.FallbackConfig == "":
			out = append(out, "fallback config removed")
		default:
			out = append(out, fmt.Sprintf("fallback config edited (%d → %d lines)", lines(old.FallbackConfig), lines(new.FallbackConfig)))
		}
	}
	oldJobs := map[string]JobOverride{}
	for _, o := range old.Jobs {
		oldJobs[jobKey(o)] = o
	}
	newJobs := map[string]bool{}
	for _, o := range new.Jobs {
		newJobs[jobKey(o)] = true
		before, ok := oldJobs[jobKey(o)]
		if !ok || !sameOverride(before, o) {
			out = append(out, fmt.Sprintf("job %s: %s", jobKey(o), describeOverride(o)))
		}
	}
	for _, o := range old.Jobs {
		if !newJobs[jobKey(o)] {
			out = append(out, fmt.Sprintf("job %s: override removed", jobKey(o)))
		}
	}
	return out
}

func jobKey(o JobOverride) string {
	if o.Identifier == "" {
		return string(o.Type)
	}
	return string(o.Type) + " " + o.Identifier
}

func sameOverride(a, b JobOverride) bool {
	return a.Disabled == b.Disabled && a.Branch == b.Branch && slices.Equal(a.Triggers, b.Triggers)
}

func describeOverride(o JobOverride) string {
	if o.Disabled {
		return "switched off"
	}
	var parts []string
	if len(o.Triggers) > 0 {
		parts = append(parts, "triggers "+joinTriggers(o.Triggers))
	}
	if o.Branch != "" {
		parts = append(parts, fmt.Sprintf("branch %q", o.Branch))
	}
	if len(parts) == 0 {
		return "as configured"
	}
	return strings.Join(parts, ", ")
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "(from the config)"
	}
	return strings.Join(l, ", ")
}

func policyName(p string) string {
	if p == ApprovalInherit {
		return "the operator's"
	}
	return p
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(from the config)"
	}
	return fmt.Sprintf("%q", s)
}

func lines(s string) int {
	return strings.Count(strings.TrimSuffix(s, "\n"), "\n") + 1
}
