// Package hygiene holds no code: its tests check the repository's own
// conventions across every package of the module, such as a doc comment on
// each package and no person-attributed TODO notes.
package hygiene
