{#-
    Each address key's validation result and normalized form, as the runner wrote it before building the
    models that read it (direct_mail.yml's addresses.validate names the model of addresses it validates).
-#}
with

source as (

    select * from {{ source('direct_mail', 'address_validations') }}

),

renamed as (

    select
        address_key,
        is_valid_address,
        address_errors,
        normalized_address_line_1,
        normalized_address_line_2,
        normalized_postal_code,
        normalized_city,
        normalized_region,
        normalized_country_code,
        household_key,
        validator_version,
        validated_at

    from source

)

select * from renamed
