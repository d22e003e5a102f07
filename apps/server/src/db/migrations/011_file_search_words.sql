-- Search words are now computed by the server (services/files/words.ts) and stored with
-- array_to_tsvector: the same tokeniser for files and queries, and far cheaper than the
-- database's parser plus regular expressions. Rows made by 010's SQL function are dropped;
-- the server rebuilds missing rows at start-up (files whose hash has no search row).
DELETE FROM file_search;
DROP FUNCTION vaporform_code_words(text);
