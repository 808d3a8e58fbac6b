package session

import "fmt"

// CheckSecret is the one rule for a configured secret's length, MinSecretLen:
// for session secrets and the assertion's HS256 secret alike. name is how
// the error refers to the secret; it never holds the value.
func CheckSecret(name, v string) error {
	if len(v) < MinSecretLen {
		return fmt.Errorf("%s is %d characters; it must be at least %d", name, len(v), MinSecretLen)
	}
	return nil
}
