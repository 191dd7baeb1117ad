package command_test

import (
	"fmt"

	"upbuild.dev/upbuild/internal/command"
)

func ExampleParse() {
	comment := "Looks good, but the tests flaked.\n\n/packit test --labels smoke --env DEBUG=1\n"
	r := command.Parse(comment, []string{"/packit"})
	for _, c := range r.Commands {
		fmt.Println(c.Line, c.Name, c.Labels, c.Env)
	}
	for _, e := range command.Parse("/packit biuld", nil).Errors {
		fmt.Println(e)
	}
	// Output:
	// 3 test [smoke] map[DEBUG:1]
	// line 1: unknown command "biuld": did you mean "build"?
}
