package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/takumo/aegis/detect"
)

// The reports never contain a secret value: a finding holds offsets, a
// rule and a masked preview only, and only text output shows the preview.

// writeText prints one line per finding, "path:line:col: rule (CATEGORY)
// preview", and a summary line. Monitor findings are left out unless
// showMonitor is set.
func writeText(w io.Writer, findings []finding, sum scanSummary, showMonitor bool) error {
	bw := bufio.NewWriter(w)
	var (
		counted, hidden int
		files           = map[string]bool{}
	)
	for _, f := range findings {
		monitor := f.Action == detect.Monitor
		if monitor && !showMonitor {
			hidden++
			continue
		}
		if !monitor {
			counted++
			files[f.Path] = true
		}
		fmt.Fprintf(bw, "%s:%d:%d: %s (%s) %s", f.Path, f.Line, f.Column, f.Rule, f.Category, f.Preview)
		if monitor {
			bw.WriteString(" [monitor]")
		}
		bw.WriteByte('\n')
	}
	scanned := fmt.Sprintf("%d %s scanned, %d bytes", sum.filesScanned, plural(sum.filesScanned, "file", "files"), sum.bytesScanned)
	if sum.filesSkipped > 0 {
		scanned += fmt.Sprintf(", %d binary skipped", sum.filesSkipped)
	}
	if counted == 0 {
		fmt.Fprintf(bw, "No secrets found (%s).\n", scanned)
	} else {
		fmt.Fprintf(bw, "%d %s found in %d %s (%s).\n", counted, plural(counted, "secret", "secrets"),
			len(files), plural(len(files), "file", "files"), scanned)
	}
	if hidden > 0 {
		fmt.Fprintf(bw, "%d monitor %s not shown (--show-monitor lists them).\n", hidden, plural(hidden, "finding", "findings"))
	}
	return bw.Flush()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// jsonReport is the JSON output of scan.
type jsonReport struct {
	Findings     []jsonFinding `json:"findings"`
	FilesScanned int           `json:"files_scanned"`
	FilesSkipped int           `json:"files_skipped"`
	BytesScanned int64         `json:"bytes_scanned"`
}

type jsonFinding struct {
	Path     string `json:"path"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Start    int64  `json:"start"`
	End      int64  `json:"end"`
	Rule     string `json:"rule"`
	Category string `json:"category"`
	Action   string `json:"action"`
}

func writeJSON(w io.Writer, findings []finding, sum scanSummary) error {
	rep := jsonReport{
		Findings:     make([]jsonFinding, 0, len(findings)),
		FilesScanned: sum.filesScanned,
		FilesSkipped: sum.filesSkipped,
		BytesScanned: sum.bytesScanned,
	}
	for _, f := range findings {
		rep.Findings = append(rep.Findings, jsonFinding{
			Path: f.Path, Line: f.Line, Column: f.Column, Start: f.Start, End: f.End,
			Rule: f.Rule, Category: string(f.Category), Action: string(f.Action),
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// SARIF 2.1.0, the subset code-scanning services read.
type (
	sarifLog struct {
		Schema  string     `json:"$schema"`
		Version string     `json:"version"`
		Runs    []sarifRun `json:"runs"`
	}
	sarifRun struct {
		Tool       sarifTool     `json:"tool"`
		ColumnKind string        `json:"columnKind"`
		Results    []sarifResult `json:"results"`
	}
	sarifTool struct {
		Driver sarifDriver `json:"driver"`
	}
	sarifDriver struct {
		Name    string      `json:"name"`
		Version string      `json:"version"`
		Rules   []sarifRule `json:"rules"`
	}
	sarifRule struct {
		ID                   string            `json:"id"`
		ShortDescription     sarifText         `json:"shortDescription"`
		DefaultConfiguration sarifConfig       `json:"defaultConfiguration"`
		Properties           map[string]string `json:"properties"`
	}
	sarifConfig struct {
		Level string `json:"level"`
	}
	sarifText struct {
		Text string `json:"text"`
	}
	sarifResult struct {
		RuleID     string            `json:"ruleId"`
		RuleIndex  int               `json:"ruleIndex"`
		Level      string            `json:"level"`
		Message    sarifText         `json:"message"`
		Locations  []sarifLocation   `json:"locations"`
		Properties map[string]string `json:"properties"`
	}
	sarifLocation struct {
		PhysicalLocation sarifPhysical `json:"physicalLocation"`
	}
	sarifPhysical struct {
		ArtifactLocation sarifArtifact `json:"artifactLocation"`
		Region           sarifRegion   `json:"region"`
	}
	sarifArtifact struct {
		URI string `json:"uri"`
	}
	sarifRegion struct {
		StartLine   int   `json:"startLine"`
		StartColumn int   `json:"startColumn"`
		EndLine     int   `json:"endLine"`
		EndColumn   int   `json:"endColumn"`
		ByteOffset  int64 `json:"byteOffset"`
		ByteLength  int64 `json:"byteLength"`
	}
)

// writeSARIF writes a SARIF log with one result per finding (monitor
// findings as notes) and a descriptor for each rule that has results.
// Columns count Unicode code points, as the run's columnKind says.
func writeSARIF(w io.Writer, findings []finding, ruleSet map[string]detect.Rule) error {
	var ids []string
	for _, f := range findings {
		if !slices.Contains(ids, f.Rule) {
			ids = append(ids, f.Rule)
		}
	}
	slices.Sort(ids)
	descs := make([]sarifRule, 0, len(ids))
	for _, id := range ids {
		r, ok := ruleSet[id]
		desc := r.Description
		if desc == "" {
			desc = "Secret found by rule " + id
		}
		props := map[string]string{}
		if ok {
			props["category"] = string(r.Category)
		}
		descs = append(descs, sarifRule{
			ID:                   id,
			ShortDescription:     sarifText{Text: desc},
			DefaultConfiguration: sarifConfig{Level: sarifLevel(r.Action)},
			Properties:           props,
		})
	}
	results := make([]sarifResult, 0, len(findings))
	for _, f := range findings {
		idx, _ := slices.BinarySearch(ids, f.Rule)
		results = append(results, sarifResult{
			RuleID:    f.Rule,
			RuleIndex: idx,
			Level:     sarifLevel(f.Action),
			Message: sarifText{Text: fmt.Sprintf("%s secret (rule %s, action %s); the value is not shown",
				f.Category, f.Rule, f.Action)},
			Locations: []sarifLocation{{PhysicalLocation: sarifPhysical{
				ArtifactLocation: sarifArtifact{URI: sarifURI(f.Path)},
				Region: sarifRegion{
					StartLine: f.Line, StartColumn: f.RuneColumn,
					EndLine: f.EndLine, EndColumn: f.EndRuneColumn,
					ByteOffset: f.Start, ByteLength: f.End - f.Start,
				},
			}}},
			Properties: map[string]string{"category": string(f.Category), "action": string(f.Action)},
		})
	}
	log := sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs: []sarifRun{{
			Tool:       sarifTool{Driver: sarifDriver{Name: progName, Version: Version, Rules: descs}},
			ColumnKind: "unicodeCodePoints",
			Results:    results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

func sarifLevel(a detect.Action) string {
	if a == detect.Monitor {
		return "note"
	}
	return "error"
}

// sarifURI turns a path into a URI reference: relative paths stay
// relative, absolute ones become file URIs.
func sarifURI(p string) string {
	slash := filepath.ToSlash(p)
	if filepath.IsAbs(p) {
		if !strings.HasPrefix(slash, "/") {
			slash = "/" + slash // Windows drive letters
		}
		return (&url.URL{Scheme: "file", Path: slash}).String()
	}
	return (&url.URL{Path: slash}).String()
}
