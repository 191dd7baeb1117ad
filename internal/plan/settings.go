package plan

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// parseUpbuildSettings reads .upbuild.yaml strictly: an unknown key is an
// error, so a typo does not silently change behaviour.
func parseUpbuildSettings(data []byte) (upbuildSettings, error) {
	var s upbuildSettings
	if len(data) > 64<<10 {
		return s, errors.New("file larger than 64 KiB")
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return upbuildSettings{}, fmt.Errorf("%w", err)
	}
	return s, nil
}
