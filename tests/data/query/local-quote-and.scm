; Parity case "local-quote-and", after OpenCog atomspace tests/query/LocalQuoteUTest: LocalQuoteLink: an AndLink matched as data, not as a conjunction.
;; @data
(And (Concept "a") (Concept "b"))
(And (Concept "c") (Concept "b"))
(And (Concept "c") (Concept "d"))
;; @query
(Get (Variable "$x") (LocalQuote (And (Variable "$x") (Concept "b"))))
;; @expect
(Set (Concept "a") (Concept "c"))
