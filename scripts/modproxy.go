//go:build ignore

// Modproxy publishes modules from directories into a file-based Go module
// proxy (the GOPROXY protocol laid out on disk, usable as
// GOPROXY=file:///DIR), as a tag would publish them through
// proxy.golang.org. scripts/release-check uses it to prove that the
// committed go.mod files resolve without replace directives.
//
//	go run scripts/modproxy.go -out DIR -version v0.1.0 MODDIR...
//
// Each MODDIR is a directory with a go.mod. Its zip holds what the go
// command's own module zips hold: every regular file under MODDIR except
// those in nested modules (directories with their own go.mod), vendor
// directories and version-control directories, prefixed with
// "MODULE@VERSION/".
package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "", "proxy `DIR` to write (created if missing)")
	version := flag.String("version", "", "semantic `VERSION` to publish, e.g. v0.1.0")
	flag.Parse()
	if *out == "" || !strings.HasPrefix(*version, "v") || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: go run scripts/modproxy.go -out DIR -version vX.Y.Z MODDIR...")
		os.Exit(2)
	}
	for _, dir := range flag.Args() {
		mod, err := publish(*out, *version, dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "modproxy:", err)
			os.Exit(1)
		}
		fmt.Printf("modproxy: %s@%s from %s\n", mod, *version, dir)
	}
}

// publish writes dir's module at version into the proxy at out and
// returns its module path.
func publish(out, version, dir string) (string, error) {
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	mod := modulePath(gomod)
	if mod == "" {
		return "", fmt.Errorf("%s/go.mod: no module line", dir)
	}
	if strings.ToLower(mod) != mod {
		return "", fmt.Errorf("%s: upper-case module paths need the proxy's !-escaping, which this tool does not do", mod)
	}
	at := filepath.Join(out, filepath.FromSlash(mod), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		return "", err
	}
	files, err := moduleFiles(dir)
	if err != nil {
		return "", err
	}
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return "", err
		}
		w, err := zw.Create(mod + "@" + version + "/" + rel)
		if err != nil {
			return "", err
		}
		if _, err := w.Write(data); err != nil {
			return "", err
		}
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	info, _ := json.Marshal(struct{ Version, Time string }{version, time.Now().UTC().Format(time.RFC3339)})
	for name, data := range map[string][]byte{
		version + ".zip":  zb.Bytes(),
		version + ".mod":  gomod,
		version + ".info": info,
	} {
		if err := os.WriteFile(filepath.Join(at, name), data, 0o644); err != nil {
			return "", err
		}
	}
	return mod, addToList(filepath.Join(at, "list"), version)
}

// modulePath returns the path on go.mod's module line.
func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// moduleFiles lists the files of the module rooted at dir, slash-separated
// and relative to dir, sorted.
func moduleFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			switch d.Name() {
			case ".git", ".hg", ".svn", ".bzr", "vendor":
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return filepath.SkipDir // a nested module: published on its own
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		}
		if d.Type().IsRegular() {
			files = append(files, path.Clean(rel))
		}
		return nil
	})
	slices.Sort(files)
	return files, err
}

// addToList adds version to the proxy's list of versions, once.
func addToList(list, version string) error {
	old, err := os.ReadFile(list)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	versions := strings.Fields(string(old))
	if !slices.Contains(versions, version) {
		versions = append(versions, version)
	}
	return os.WriteFile(list, []byte(strings.Join(versions, "\n")+"\n"), 0o644)
}
