package cli

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// The walker turns scan arguments into a stream of files to read.
//
// Rules, decided here and documented in the README:
//   - An argument naming a file (or "-" for stdin) is scanned whatever the
//     ignore rules say: the user asked for it. A symlink given as an
//     argument is followed.
//   - Inside a directory: ".git" entries are skipped; symlinks to
//     directories are not followed; symlinks to files are read; other
//     non-regular files (FIFOs, sockets, devices) and broken symlinks are
//     reported as warnings and skipped.
//   - .gitignore files are honoured at every level, with git's priority
//     rules (a deeper file wins, a later line wins, "!" re-includes). When
//     the argument lies inside a git work tree, the .gitignore files between
//     the top of the work tree and the argument apply too.
//   - --ignore patterns use .gitignore syntax, relative to the argument: a
//     pattern without a slash matches a base name at any depth ("*.min.js",
//     "vendor"), one with a slash matches the relative path ("dir/*.go",
//     "testdata/**"). An ignored directory is not entered.
//
// go-git's gitignore package does the matching: it is maintained, it models
// a pattern's domain (the directory of the .gitignore it came from), which
// nested files need, and its Matcher applies git's priority order.

// fileJob is one file to scan.
type fileJob struct {
	display string // path as reached from the argument; "-" for stdin
	osPath  string // path to open; empty for stdin
	size    int64  // -1 when unknown
}

// walkOptions configures a walk.
type walkOptions struct {
	ignore      []gitignore.Pattern // from --ignore, domain = argument
	noRecursive bool
	noGitignore bool
}

// walker emits the files under the scan arguments. Not safe for concurrent
// use; one goroutine runs it.
type walker struct {
	opts walkOptions
	emit func(fileJob) bool // false: stop (context cancelled)
	warn func(format string, args ...any)
	seen map[string]bool // cleaned OS paths already emitted
}

var errStopped = errors.New("walk stopped")

// walkArg walks one argument that is known to exist (checked by the caller).
func (w *walker) walkArg(ctx context.Context, arg string) error {
	if arg == "-" {
		if !w.emit(fileJob{display: "-", size: -1}) {
			return errStopped
		}
		return nil
	}
	fi, err := os.Stat(arg)
	if err != nil {
		w.warn("%s: %s, skipped", arg, describeErr(err))
		return nil
	}
	switch {
	case fi.IsDir():
		return w.walkRoot(ctx, arg)
	default:
		// Regular files, and pipes named explicitly (`scan <(git diff)`).
		return w.file(arg, arg, fi.Size())
	}
}

func (w *walker) file(display, osPath string, size int64) error {
	key := filepath.Clean(osPath)
	if w.seen[key] {
		return nil
	}
	w.seen[key] = true
	if !w.emit(fileJob{display: display, osPath: osPath, size: size}) {
		return errStopped
	}
	return nil
}

// walkRoot walks the directory argument root.
func (w *walker) walkRoot(ctx context.Context, root string) error {
	var (
		prefix   []string // root's path relative to the ignore root
		patterns []gitignore.Pattern
	)
	if !w.opts.noGitignore {
		prefix, patterns = w.parentIgnores(root)
	}
	return w.walkDir(ctx, root, root, nil, prefix, patterns)
}

// parentIgnores finds the git work tree around root, if any, and returns
// root's path inside it and the patterns of the .gitignore files above
// root (root's own is read by walkDir).
func (w *walker) parentIgnores(root string) ([]string, []gitignore.Pattern) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, nil
	}
	top := ""
	for d := abs; ; {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			top = d
			break
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if top == "" || top == abs {
		return nil, nil
	}
	rel, err := filepath.Rel(top, abs)
	if err != nil {
		return nil, nil
	}
	prefix := strings.Split(filepath.ToSlash(rel), "/")
	var ps []gitignore.Pattern
	dir := top
	for i := 0; i < len(prefix); i++ {
		ps = append(ps, w.readIgnoreFile(dir, prefix[:i])...)
		dir = filepath.Join(dir, prefix[i])
	}
	return prefix, ps
}

// readIgnoreFile parses dir/.gitignore; domain is dir's path relative to
// the ignore root. A missing file yields nothing; an unreadable one a
// warning.
func (w *walker) readIgnoreFile(dir string, domain []string) []gitignore.Pattern {
	name := filepath.Join(dir, ".gitignore")
	f, err := os.Open(name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			w.warn("%s: %s (its patterns are not applied)", name, describeErr(err))
		}
		return nil
	}
	defer f.Close()
	var ps []gitignore.Pattern
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, `\#`) || strings.HasPrefix(line, `\!`) {
			line = line[1:]
		}
		ps = append(ps, gitignore.ParsePattern(line, domain))
	}
	if err := sc.Err(); err != nil {
		w.warn("%s: %s (its patterns are not applied)", name, describeErr(err))
		return nil
	}
	return ps
}

// walkDir scans the directory osDir, reached as rel (segments below the
// argument root). prefix is root's position below the ignore root and
// patterns are the .gitignore patterns in force for osDir's parent.
func (w *walker) walkDir(ctx context.Context, root, osDir string, rel, prefix []string, patterns []gitignore.Pattern) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(osDir)
	if err != nil {
		w.warn("%s: %s, skipped", displayPath(root, rel), describeErr(err))
		// ReadDir returns what it read before the error; go on with that.
	}
	if !w.opts.noGitignore {
		own := w.readIgnoreFile(osDir, join(prefix, rel...))
		if len(own) > 0 {
			patterns = append(patterns[:len(patterns):len(patterns)], own...)
		}
	}
	gi := gitignore.NewMatcher(patterns)
	user := gitignore.NewMatcher(w.opts.ignore)

	for _, e := range entries {
		name := e.Name()
		if name == ".git" {
			continue
		}
		childRel := join(rel, name)
		childOS := filepath.Join(osDir, name)
		display := displayPath(root, childRel)
		mode := e.Type()
		var size int64 = -1
		if mode&fs.ModeSymlink != 0 {
			fi, err := os.Stat(childOS)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					w.warn("%s: broken symlink, skipped", display)
				} else {
					w.warn("%s: %s, skipped", display, describeErr(err))
				}
				continue
			}
			if fi.IsDir() {
				continue // symlinked directories are not followed
			}
			mode, size = fi.Mode().Type(), fi.Size()
		}
		isDir := mode.IsDir()
		if user.Match(childRel, isDir) || gi.Match(join(prefix, childRel...), isDir) {
			continue
		}
		switch {
		case isDir:
			if w.opts.noRecursive {
				continue
			}
			if err := w.walkDir(ctx, root, childOS, childRel, prefix, patterns); err != nil {
				return err
			}
		case mode.IsRegular():
			if size < 0 {
				if fi, err := e.Info(); err == nil {
					size = fi.Size()
				}
			}
			if err := w.file(display, childOS, size); err != nil {
				return err
			}
		default:
			w.warn("%s: not a regular file (%s), skipped", display, kindOf(mode))
		}
	}
	return nil
}

// join returns a new slice a+b (never aliasing a).
func join(a []string, b ...string) []string {
	out := make([]string, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}

func displayPath(root string, rel []string) string {
	return filepath.Join(append([]string{root}, rel...)...)
}

func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	default:
		return "irregular file"
	}
}

// describeErr turns a file-system error into a short reason without the
// path (callers print the path themselves).
func describeErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case errors.Is(err, fs.ErrPermission):
		return "permission denied (check its permissions)"
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	}
	return err.Error()
}
