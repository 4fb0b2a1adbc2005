## Regenerate lme4 REML reference fits for the framework's mixed-model tests.
## Run from anywhere:
##   Rscript tests/reference/lme4/make_reference.R [output_dir]
## Needs Debian packages r-cran-lme4 r-cran-nlme r-cran-jsonlite.
suppressPackageStartupMessages({
  library(lme4)
  library(nlme, include.only = character(0))  # only for its data sets
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
out_dir <- if (length(args) >= 1) args[1] else {
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) dirname(normalizePath(f)) else "."
}

doc_title <- function(topic, package) {
  ## Title line of the data set's R documentation page.
  db <- tools::Rd_db(package)
  rd <- db[[paste0(topic, ".Rd")]]
  if (is.null(rd)) return(NA_character_)
  tags <- vapply(rd, function(x) attr(x, "Rd_tag"), "")
  trimws(gsub("\\s+", " ", paste(unlist(rd[[which(tags == "\\title")]]), collapse = "")))
}

make_ref <- function(name, package, dataset, formula, group, columns) {
  env <- new.env()
  data(list = dataset, package = package, envir = env)
  d <- as.data.frame(get(dataset, envir = env))
  d <- d[, columns]
  fit <- lmer(formula, data = d, REML = TRUE)

  ## CSV: needed columns only; group (and factor) columns written as text.
  csv <- d
  for (cn in names(csv)) if (is.factor(csv[[cn]])) csv[[cn]] <- as.character(csv[[cn]])
  write.csv(csv, file.path(out_dir, paste0(name, ".csv")), row.names = FALSE)

  fe <- summary(fit)$coefficients
  fixed <- lapply(seq_len(nrow(fe)), function(i)
    list(estimate = unname(fe[i, "Estimate"]), std_error = unname(fe[i, "Std. Error"])))
  names(fixed) <- rownames(fe)

  vc <- VarCorr(fit)[[group]]
  sds <- as.list(attr(vc, "stddev"))
  cor <- attr(vc, "correlation")
  cor_list <- list()
  if (nrow(cor) > 1) for (i in 1:(nrow(cor) - 1)) for (j in (i + 1):ncol(cor))
    cor_list[[paste(rownames(cor)[i], colnames(cor)[j], sep = " ~ ")]] <- cor[i, j]

  cf <- coef(fit)[[group]]
  per_group <- lapply(seq_len(nrow(cf)), function(i) as.list(cf[i, , drop = FALSE]))
  names(per_group) <- rownames(cf)
  re <- ranef(fit)[[group]]
  per_group_re <- lapply(seq_len(nrow(re)), function(i) as.list(re[i, , drop = FALSE]))
  names(per_group_re) <- rownames(re)

  factors <- list()
  for (cn in columns) if (is.factor(d[[cn]]) && cn != group)
    factors[[cn]] <- list(levels = levels(d[[cn]]), reference_level = levels(d[[cn]])[1],
                          contrasts = "contr.treatment")

  res <- list(
    name = name,
    formula = paste(deparse(formula, width.cutoff = 500L), collapse = ""),
    method = "REML",
    provenance = list(source = paste0(package, "::", dataset),
                      package_version = as.character(packageVersion(package)),
                      documentation_title = doc_title(dataset, package),
                      license_note = paste("Data set shipped with the GPL-licensed R package", package)),
    csv = paste0(name, ".csv"),
    columns = columns,
    group = group,
    n_obs = nobs(fit),
    n_groups = nlevels(d[[group]]),
    categorical = factors,
    fixed_effects = fixed,
    random_effects = list(group = group, sd = sds, correlation = cor_list),
    sigma = sigma(fit),
    reml_criterion = unname(REMLcrit(fit)),
    converged_messages = fit@optinfo$conv$lme4$messages,
    coef = list(),
    ranef = list(),
    software = list(R = R.version.string,
                    lme4 = as.character(packageVersion("lme4")),
                    Matrix = as.character(packageVersion("Matrix")),
                    command = "Rscript tests/reference/lme4/make_reference.R")
  )
  res$coef[[group]] <- per_group
  res$ranef[[group]] <- per_group_re
  writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
             file.path(out_dir, paste0(name, ".json")))
  cat("\n=====", name, "=====\n"); print(summary(fit))
  invisible(fit)
}

make_ref("sleepstudy", "lme4", "sleepstudy",
         Reaction ~ Days + (Days | Subject), "Subject",
         c("Subject", "Days", "Reaction"))
make_ref("orthodont", "nlme", "Orthodont",
         distance ~ age + Sex + (age | Subject), "Subject",
         c("Subject", "Sex", "age", "distance"))
make_ref("mathachieve", "nlme", "MathAchieve",
         MathAch ~ SES + MEANSES + (SES | School), "School",
         c("School", "SES", "MEANSES", "MathAch"))
