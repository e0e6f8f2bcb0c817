// Package glob matches keys against Redis glob patterns (KEYS, SCAN MATCH) with the
// semantics of Redis's stringmatchlen: *, ?, [abc], [^abc], [a-z] and \ escapes.
package glob

// Match reports whether s matches pattern.
func Match(pattern, s []byte) bool {
	var skipLonger bool
	return match(pattern, s, &skipLonger, 0)
}

// maxNesting bounds the recursion of consecutive stars, as Redis does, so a
// hostile pattern like "a*a*a*a*...b" cannot take exponential time.
const maxNesting = 1000

// skipLonger is Redis's fix for exponential backtracking: once a star's tail fails
// after consuming the whole string, trying the star with longer prefixes cannot help.
func match(p, s []byte, skipLonger *bool, nesting int) bool {
	if nesting > maxNesting {
		return false
	}
	for len(p) > 0 && len(s) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for len(s) > 0 {
				if match(p[1:], s, skipLonger, nesting+1) {
					return true
				}
				if *skipLonger {
					return false
				}
				s = s[1:]
			}
			*skipLonger = true
			return false
		case '?':
			s = s[1:]
		case '[':
			p = p[1:]
			not := len(p) > 0 && p[0] == '^'
			if not {
				p = p[1:]
			}
			matched := false
			for {
				if len(p) == 0 {
					break
				}
				if p[0] == '\\' && len(p) >= 2 {
					p = p[1:]
					if p[0] == s[0] {
						matched = true
					}
				} else if p[0] == ']' {
					break
				} else if len(p) >= 3 && p[1] == '-' {
					start, end := p[0], p[2]
					if start > end {
						start, end = end, start
					}
					p = p[2:]
					if s[0] >= start && s[0] <= end {
						matched = true
					}
				} else if p[0] == s[0] {
					matched = true
				}
				p = p[1:]
			}
			if len(p) == 0 {
				// Unterminated class: Redis treats the end of pattern as the ']'.
				p = []byte{']'}
			}
			if not {
				matched = !matched
			}
			if !matched {
				return false
			}
			s = s[1:]
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			if p[0] != s[0] {
				return false
			}
			s = s[1:]
		default:
			if p[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		p = p[1:]
	}
	if len(s) == 0 {
		for len(p) > 0 && p[0] == '*' {
			p = p[1:]
		}
	}
	return len(p) == 0 && len(s) == 0
}

// LiteralPrefix returns the part of pattern before its first special character,
// unescaped: every key the pattern matches starts with it, so a scan can seek there.
func LiteralPrefix(pattern []byte) []byte {
	var out []byte
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*', '?', '[':
			return out
		case '\\':
			if i+1 < len(pattern) {
				i++
				out = append(out, pattern[i])
			} else {
				return out
			}
		default:
			out = append(out, c)
		}
	}
	return out
}
