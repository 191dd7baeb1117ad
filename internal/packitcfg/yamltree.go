package packitcfg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// nodeKind is the shape of a value after aliases and merge keys are expanded.
type nodeKind int

const (
	kindNull nodeKind = iota
	kindScalar
	kindMap
	kindSeq
)

// scalarType is the type PyYAML (YAML 1.1, which Packit uses through
// yaml.safe_load) gives a scalar. It matters because Packit's schema is
// strict: `identifier: 42` is an int there and is refused as "not a string".
type scalarType int

const (
	typeStr scalarType = iota
	typeInt
	typeFloat
	typeBool
	typeNull
)

func (t scalarType) String() string {
	switch t {
	case typeInt:
		return "an integer"
	case typeFloat:
		return "a number"
	case typeBool:
		return "a boolean"
	case typeNull:
		return "null"
	default:
		return "a string"
	}
}

// node is one YAML value with its position, aliases resolved and merge keys
// applied the way PyYAML applies them. Anchored values are shared between
// the places that use them, so nodes are never mutated after conversion.
type node struct {
	kind   nodeKind
	scalar scalarType
	text   string
	line   int
	column int
	pairs  []pair // kindMap: keys in first-seen order, the last value wins
	items  []*node
}

type pair struct {
	key string
	pos *node // the key's own node, for error positions
	val *node
}

func (n *node) get(key string) (*node, bool) {
	for _, p := range n.pairs {
		if p.key == key {
			return p.val, true
		}
	}
	return nil, false
}

func (n *node) describe() string {
	switch n.kind {
	case kindMap:
		return "a mapping"
	case kindSeq:
		return "a list"
	case kindNull:
		return "null"
	default:
		return n.scalar.String()
	}
}

// treeBuilder converts a yaml.v3 node tree into nodes while enforcing the
// expansion budget. The budget counts every node produced through an alias
// (including merge keys, which are aliases in practice), so a "billion
// laughs" document is stopped after a bounded amount of work.
type treeBuilder struct {
	file        string
	aliasBudget int
	aliasUsed   int
	maxDepth    int
	inProgress  map[*yaml.Node]bool // anchors being expanded, to catch cycles
}

// errBudget aborts the conversion; the Error that explains it is built by
// the caller so that it carries the position of the alias that overflowed.
var errBudget = errors.New("alias expansion budget exceeded")

// parseTree parses data as a single YAML document.
func parseTree(file string, data []byte, opts Options) (*node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &node{kind: kindMap, line: 1, column: 1}, nil // an empty file is {}
		}
		return nil, yamlError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: file, Line: extra.Line, Column: extra.Column,
			Msg: "the file holds more than one YAML document; Packit expects exactly one"}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlError(file, err)
	}
	b := &treeBuilder{
		file:        file,
		aliasBudget: opts.maxAliasNodes(),
		maxDepth:    maxNesting,
		inProgress:  map[*yaml.Node]bool{},
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return &node{kind: kindMap, line: 1, column: 1}, nil
		}
		root = root.Content[0]
	}
	return b.convert(root, 0, false)
}

// maxNesting bounds recursion; real configs nest fewer than 15 levels and
// Python's own recursion limit would give up long before this.
const maxNesting = 200

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a yaml.v3 syntax error into an *Error with its line.
// yaml.v3 reports lines but not columns for syntax errors.
func yamlError(file string, err error) error {
	msg := err.Error()
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line := 0
		if _, scanErr := fmt.Sscanf(m[1], "%d", &line); scanErr == nil {
			return &Error{File: file, Line: line, Msg: "invalid YAML: " + m[2]}
		}
	}
	return &Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

func (b *treeBuilder) convert(y *yaml.Node, depth int, viaAlias bool) (*node, error) {
	if depth > b.maxDepth {
		return nil, &Error{File: b.file, Line: y.Line, Column: y.Column,
			Msg: fmt.Sprintf("the document nests deeper than %d levels", b.maxDepth)}
	}
	if viaAlias {
		b.aliasUsed++
		if b.aliasUsed > b.aliasBudget {
			return nil, errBudget
		}
	}
	switch y.Kind {
	case yaml.AliasNode:
		target := y.Alias
		if target == nil {
			return nil, &Error{File: b.file, Line: y.Line, Column: y.Column, Msg: "alias to an unknown anchor"}
		}
		if b.inProgress[target] {
			return nil, &Error{File: b.file, Line: y.Line, Column: y.Column,
				Msg: fmt.Sprintf("alias *%s refers to the value that contains it", y.Value)}
		}
		b.inProgress[target] = true
		n, err := b.convert(target, depth+1, true)
		delete(b.inProgress, target)
		if errors.Is(err, errBudget) {
			return nil, &Error{File: b.file, Line: y.Line, Column: y.Column,
				Msg: fmt.Sprintf("aliases expand to more than %d values; refusing the file (possible alias bomb)", b.aliasBudget)}
		}
		return n, err
	case yaml.ScalarNode:
		return b.scalar(y), nil
	case yaml.SequenceNode:
		n := &node{kind: kindSeq, line: y.Line, column: y.Column}
		for _, c := range y.Content {
			item, err := b.convert(c, depth+1, viaAlias)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, item)
		}
		return n, nil
	case yaml.MappingNode:
		return b.mapping(y, depth, viaAlias)
	default:
		return nil, &Error{File: b.file, Line: y.Line, Column: y.Column, Msg: "unsupported YAML construct"}
	}
}

// mapping applies PyYAML's merge-key rules: the pairs of every `<<` value
// come first (for a list of mappings, later ones first, so the earliest
// wins), then the explicit pairs; when a key repeats, the last one wins.
// With several `<<` keys in one mapping, a later one overrides an earlier one.
func (b *treeBuilder) mapping(y *yaml.Node, depth int, viaAlias bool) (*node, error) {
	var merged, explicit []pair
	for i := 0; i+1 < len(y.Content); i += 2 {
		k, v := y.Content[i], y.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			src, err := b.convert(v, depth+1, viaAlias)
			if err != nil {
				return nil, err
			}
			switch src.kind {
			case kindMap:
				merged = append(merged, src.pairs...)
			case kindSeq:
				for j := len(src.items) - 1; j >= 0; j-- {
					if src.items[j].kind != kindMap {
						return nil, &Error{File: b.file, Line: src.items[j].line, Column: src.items[j].column,
							Msg: "a merge key (<<) list may only hold mappings"}
					}
					merged = append(merged, src.items[j].pairs...)
				}
			default:
				return nil, &Error{File: b.file, Line: v.Line, Column: v.Column,
					Msg: "a merge key (<<) needs a mapping or a list of mappings"}
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return nil, &Error{File: b.file, Line: k.Line, Column: k.Column, Msg: "mapping keys must be plain values"}
		}
		keyNode := b.scalar(k)
		val, err := b.convert(v, depth+1, viaAlias)
		if err != nil {
			return nil, err
		}
		explicit = append(explicit, pair{key: k.Value, pos: keyNode, val: val})
	}
	n := &node{kind: kindMap, line: y.Line, column: y.Column}
	index := map[string]int{}
	for _, p := range append(merged, explicit...) {
		if i, seen := index[p.key]; seen {
			n.pairs[i].val = p.val
			n.pairs[i].pos = p.pos
			continue
		}
		index[p.key] = len(n.pairs)
		n.pairs = append(n.pairs, p)
	}
	return n, nil
}

func (b *treeBuilder) scalar(y *yaml.Node) *node {
	n := &node{kind: kindScalar, text: y.Value, line: y.Line, column: y.Column}
	n.scalar = resolveScalar(y)
	if n.scalar == typeNull {
		n.kind = kindNull
	}
	return n
}

// The YAML 1.1 plain-scalar patterns PyYAML's resolver uses.
var (
	yaml11Bool  = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	yaml11Int   = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	yaml11Float = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
	yaml11Null  = regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)
)

// resolveScalar types a scalar as PyYAML would. Quoted scalars are strings;
// explicit tags are honoured; plain scalars follow YAML 1.1, which differs
// from yaml.v3's YAML 1.2 rules (e.g. `yes` is a boolean in 1.1).
func resolveScalar(y *yaml.Node) scalarType {
	if y.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return typeStr
	}
	if y.Tag != "" && y.Tag != "!" && y.Style&yaml.TaggedStyle != 0 {
		switch y.ShortTag() {
		case "!!int":
			return typeInt
		case "!!float":
			return typeFloat
		case "!!bool":
			return typeBool
		case "!!null":
			return typeNull
		default:
			return typeStr
		}
	}
	v := y.Value
	switch {
	case yaml11Null.MatchString(v):
		return typeNull
	case yaml11Bool.MatchString(v):
		return typeBool
	case yaml11Int.MatchString(v):
		return typeInt
	case yaml11Float.MatchString(v):
		return typeFloat
	default:
		return typeStr
	}
}
