package schemas

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

//go:embed ddl/*.sql
var ddlFiles embed.FS

// Migration is one numbered ClickHouse DDL file of schemas/ddl.
type Migration struct {
	Version    int
	Name       string
	Statements []string // each with {db} still in it; see Render
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidIdentifier reports whether s may be used unquoted as a ClickHouse database or table name.
func ValidIdentifier(s string) bool { return identRE.MatchString(s) }

// Render returns stmt with {db} replaced by database, which must be a valid identifier.
func Render(stmt, database string) (string, error) {
	if !ValidIdentifier(database) {
		return "", fmt.Errorf("database name %q: must match %s", database, identRE)
	}
	return strings.ReplaceAll(stmt, "{db}", database), nil
}

// Migrations returns the DDL migrations in version order. File names are NNNN_name.sql; statements
// are separated by ';' at the end of a line; lines starting with -- are comments.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(ddlFiles, "ddl/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Migration, 0, len(names))
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "ddl/"), ".sql")
		num, rest, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", n)
		}
		body, err := ddlFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: rest, Statements: splitStatements(string(body))})
	}
	return out, nil
}

func splitStatements(sql string) []string {
	var stmts []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}
