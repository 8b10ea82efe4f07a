package engine

import (
	"fmt"
	"math/rand/v2"
)

// Docker-style generated names: adjective_surname. The lists are short on
// purpose; a collision retries with a numeric suffix.
var (
	adjectives = []string{
		"admiring", "brave", "clever", "dazzling", "eager", "festive", "gallant", "happy",
		"inspiring", "jolly", "keen", "loving", "modest", "nifty", "optimistic", "peaceful",
		"quirky", "relaxed", "serene", "trusting", "upbeat", "vibrant", "wizardly", "youthful", "zealous",
	}
	surnames = []string{
		"albattani", "babbage", "curie", "darwin", "euclid", "feynman", "galileo", "hopper",
		"hypatia", "johnson", "kepler", "lovelace", "meitner", "newton", "noether", "pasteur",
		"ritchie", "shannon", "thompson", "turing", "villani", "wozniak", "yonath", "zhukovsky",
	}
)

func randomName(retry int) string {
	n := adjectives[rand.IntN(len(adjectives))] + "_" + surnames[rand.IntN(len(surnames))]
	if retry > 0 {
		n = fmt.Sprintf("%s%d", n, rand.IntN(10))
	}
	return n
}
