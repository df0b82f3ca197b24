-- One database per service (MLflow and Dagster both have a `runs` table), one role each.
CREATE ROLE mlflow LOGIN PASSWORD 'recsys';
CREATE ROLE feast LOGIN PASSWORD 'recsys';
CREATE ROLE dagster LOGIN PASSWORD 'recsys';
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE feast OWNER feast;
CREATE DATABASE dagster OWNER dagster;
