package token_test

import (
	"bytes"
	"fmt"

	"upbuild.dev/upbuild/internal/token"
)

// The intake side: authenticate a delivery from its X-Gitlab-Token header
// before reading the body, then check the project the payload names.
//
// The printed token pins the format: tokens pasted into GitLab must keep
// verifying across releases. It was checked against an independent HMAC
// computation of the layout in the package comment.
func Example() {
	// A real service loads its keys with LoadOrCreateKeyring.
	ring, err := token.NewKeyring(token.Key{ID: "1a2b3c4d", Secret: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		panic(err)
	}
	instance, path, err := token.ParseProjectURL("https://gitlab.gnome.org/GNOME/gtk.git")
	if err != nil {
		panic(err)
	}
	// 42 is the id of the row the caller stored for this token.
	tok, err := ring.Issue(42, token.Scope{Kind: token.ScopeProject, Instance: instance, Path: path})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(tok), "characters:", tok)

	claims, err := ring.Verify(tok) // the X-Gitlab-Token header
	if err != nil {
		panic(err)
	}
	fmt.Println("token", claims.ID, "issued with key", claims.KeyID, "for", claims.Scope)
	fmt.Println("covers gnome/gtk:", claims.Scope.Covers("https://gitlab.gnome.org", "gnome/gtk"))
	fmt.Println("covers GNOME/glib:", claims.Scope.Covers("https://gitlab.gnome.org", "GNOME/glib"))
	// Output:
	// 113 characters: upb1_ARorPE0AAAAAAAAAKnAYaHR0cHM6Ly9naXRsYWIuZ25vbWUub3JnCUdOT01FL2d0ayrMNh0iJ9g7Ewq-dWXTLfykd0xJ_YJGZaYH_duK5mNr
	// token 42 issued with key 1a2b3c4d for project https://gitlab.gnome.org/GNOME/gtk
	// covers gnome/gtk: true
	// covers GNOME/glib: false
}
